"""inference-gateway: one gRPC endpoint for text and image generation on Replicate."""

__version__ = "0.1.0"
