"""The detectors of torchdojo.models.ssd: the dense contract, offline ImageNet weights, learning."""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision

from torchdojo.models import create_model
from torchdojo.models.hub import tv_weights_path
from torchdojo.nn.boxes import multibox_loss, postprocess

DETECTORS = ("ssdlite-mobilenetv2", "fcos-mobilenetv2", "ssd-vgg")


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(url: str, *args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(name, {}) for name in DETECTORS] + [("ssdlite-mobilenetv2", {"first_stride": 8})],
)
def test_outputs_follow_the_dense_contract(name: str, kwargs: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, image_size=64, **kwargs).eval()
    x = torch.rand(2, 3, 48, 64)  # (B, 3, H, W), not square
    with torch.no_grad():
        boxes, scores = model(x)
        outputs = model.head_outputs(x)
    A = boxes.shape[1]
    assert boxes.shape == (2, A, 4) and scores.shape == (2, A, 3)
    assert (boxes[..., 0::2] >= 0).all() and (boxes[..., 0::2] <= 64).all()
    assert (boxes[..., 1::2] >= 0).all() and (boxes[..., 1::2] <= 48).all()
    assert (boxes[..., 2:] >= boxes[..., :2]).all()
    assert (scores >= 0).all() and (scores <= 1).all()
    if "anchors" in outputs:  # SSD: softmax with background, one anchor per output row
        assert outputs["anchors"].shape == (A, 4)
        first = outputs["anchors"][0]  # the first cell's 1:1 box: square on a 48 x 64 input
        assert first[2] == first[3] == pytest.approx(model.scales[0] * 48)
        if kwargs.get("first_stride") == 8:  # a 6 x 8 map first, 6 boxes per cell
            assert first[:2].tolist() == [4.0, 4.0] and A > 6 * 8 * 6
        assert outputs["cls_logits"].shape == (2, A, 4)
        assert (scores.sum(-1) <= 1 + 1e-5).all()
    else:  # FCOS: one location per row, strides 8, 16, 32 of a 48 x 64 input
        assert outputs["points"].shape == (A, 2) == (6 * 8 + 3 * 4 + 2 * 2, 2)
    (dets,) = postprocess(boxes[:1], scores[:1], score_thresh=0.0, max_detections=10)
    assert len(dets["boxes"]) == 10 and set(dets["labels"].tolist()) <= {1, 2, 3}


def test_pretrained_backbone_reads_the_torch_home_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = tv_weights_path("mobilenet_v2", "IMAGENET1K_V1")
    torch.manual_seed(3)
    source = torchvision.models.mobilenet_v2()
    path.parent.mkdir(parents=True)
    torch.save(source.state_dict(), path)
    for name in ("ssdlite-mobilenetv2", "fcos-mobilenetv2"):
        model = create_model(name, num_classes=2, pretrained=True)
        first = model.stages[0][0][0].weight  # the stem conv
        torch.testing.assert_close(first, source.features[0][0].weight)
        last = model.stages[-1 if name == "fcos-mobilenetv2" else 1][-1]  # features[18]
        torch.testing.assert_close(last[1].running_var, source.features[18][1].running_var)


def test_missing_weights_offline_give_the_hub_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="TORCH_HOME") as info:
        create_model("ssdlite-mobilenetv2", pretrained=True)
    assert "mobilenet_v2-b0353104.pth" in str(info.value)
    with pytest.raises(ValueError, match="no pretrained"):
        create_model("ssd-vgg", pretrained=True)


def test_ssdlite_learns_one_image() -> None:
    torch.manual_seed(0)
    model = create_model("ssdlite-mobilenetv2", num_classes=2, image_size=64, min_scale=0.2)
    image = torch.full((2, 3, 64, 64), 0.2)  # two copies: BN needs two values on 1x1 maps
    image[:, :, 10:40, 20:44] = 0.9  # one bright box of class 2
    targets = [{"boxes": torch.tensor([[20.0, 10.0, 44.0, 40.0]]), "labels": torch.tensor([2])}] * 2
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = model.head_outputs(image)
        loss, _ = multibox_loss(out["cls_logits"], out["box_reg"], targets, out["anchors"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        found = postprocess(*model(image))[0]
    best = found["boxes"][0]
    iou = torchvision.ops.box_iou(best[None], targets[0]["boxes"])[0, 0]
    assert found["labels"][0] == 2 and iou > 0.5


def test_library_detectors_train_and_detect() -> None:
    from torchdojo.models.detection_tv import create_library_detector

    torch.manual_seed(0)
    model = create_library_detector("tv-retinanet-mobilenetv2", num_classes=3, image_size=64)
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 48.0]]), "labels": torch.tensor([3])}] * 2
    losses = model(images, targets)
    assert set(losses) == {"classification", "bbox_regression"}
    assert all(torch.isfinite(v) for v in losses.values())
    found = model.eval()(images)
    assert len(found) == 2 and set(found[0]) == {"boxes", "scores", "labels"}
    with pytest.raises(ValueError, match="unknown library detector"):
        create_library_detector("tv-yolo", num_classes=3)


def test_tv_detector_from_a_local_coco_file_and_offline_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None
) -> None:
    from torchdojo.models.detection_tv import create_library_detector, replace_class_head

    torch.manual_seed(0)
    coco = torchvision.models.get_model(
        "ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=91
    )
    file = tmp_path / "coco.pth"
    torch.save(coco.state_dict(), file)
    name = "tv:ssdlite320_mobilenet_v3_large"
    mine = create_library_detector(name, num_classes=3, weights=str(file))
    own, theirs = mine.state_dict(), coco.state_dict()
    backbone = [k for k in theirs if k.startswith("backbone.")]
    assert all(torch.equal(own[k], theirs[k]) for k in backbone)  # loaded
    skipped = [k for k in theirs if own[k].shape != theirs[k].shape]
    assert skipped and all(k.startswith("head.classification_head") for k in skipped)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="TORCH_HOME"):
        create_library_detector(name, num_classes=3, pretrained=True)
    with pytest.raises(ValueError, match="cannot replace the class head"):
        replace_class_head(coco, 4)
