"""Config -> pieces -> checkpoint: config (schema, defaults), build (config to data, codec, model, loss), checkpoint (read and write)."""
