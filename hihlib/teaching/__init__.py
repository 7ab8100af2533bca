"""The teaching layer: the quantization-error analysis behind notebooks 01-03 and their widgets."""
