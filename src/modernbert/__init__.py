"""ModernBERT: the encoder from Answer.AI and LightOn, faithfully and fast.

    from modernbert import pipeline, AutoTokenizer, AutoModelForMaskedLM

The package needs torch, tokenizers, safetensors, huggingface_hub and numpy; never transformers.
"""

from .auto import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)
from .checkpoint import bundled_models
from .config import ModernBertConfig
from .model import (
    ModernBertForMaskedLM,
    ModernBertForMultipleChoice,
    ModernBertForQuestionAnswering,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertModel,
    ModernBertPreTrainedModel,
)
from .pipelines import (
    FeatureExtractionPipeline,
    FillMaskPipeline,
    Pipeline,
    QuestionAnsweringPipeline,
    SentenceEmbeddingPipeline,
    SentenceEncoder,
    SentenceSimilarityPipeline,
    TextClassificationPipeline,
    TokenClassificationPipeline,
    cos_sim,
    pipeline,
)
from .tokenizer import BatchEncoding, Tokenizer

__version__ = "0.1.0"

__all__ = [
    "AutoConfig",
    "AutoModel",
    "AutoModelForMaskedLM",
    "AutoModelForMultipleChoice",
    "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "BatchEncoding",
    "FeatureExtractionPipeline",
    "FillMaskPipeline",
    "ModernBertConfig",
    "ModernBertForMaskedLM",
    "ModernBertForMultipleChoice",
    "ModernBertForQuestionAnswering",
    "ModernBertForSequenceClassification",
    "ModernBertForTokenClassification",
    "ModernBertModel",
    "ModernBertPreTrainedModel",
    "Pipeline",
    "QuestionAnsweringPipeline",
    "SentenceEmbeddingPipeline",
    "SentenceEncoder",
    "SentenceSimilarityPipeline",
    "TextClassificationPipeline",
    "Tokenizer",
    "TokenClassificationPipeline",
    "__version__",
    "bundled_models",
    "cos_sim",
    "pipeline",
]
