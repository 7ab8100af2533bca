"""Studies built on the library: the demo (`hih demo`) and its claims, the decimal-head study, the reproduction tables, machine probing."""
