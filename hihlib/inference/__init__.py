"""Using a trained model: evaluate, predict (Aligner), export (ONNX), video, and conversion of released weights (HIH, H3R, HRNet-facial)."""
