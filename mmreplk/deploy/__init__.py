"""Deployment: the export form of a model (export_form) and its ONNX export and
onnxruntime check (onnx_export; onnx, onnxruntime, onnxslim imported when used)."""
