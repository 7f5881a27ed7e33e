"""ModernBERT: the encoder from Answer.AI and LightOn, faithfully and fast."""

__version__ = "0.1.0"
