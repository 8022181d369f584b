"""The LoTTS method as plain torch functions. No `comfy` import anywhere in this package."""
