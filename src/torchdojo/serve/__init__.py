"""Layer 3: an HTTP inference server and web page over an exported model folder.

Needs ONNX Runtime, FastAPI and uvicorn, not torch: it imports only the torch-free parts of
``torchdojo.export`` (card, preprocessing, predictor).
"""

from torchdojo.serve.app import create_app, run_server

__all__ = ["create_app", "run_server"]
