"""Real third-party training code on this package's models: transformers' Trainer and PEFT's LoRA."""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers
from conftest import padded_batch

import modernbert.model as M

peft = pytest.importorskip("peft", reason="peft is in the dev extra")


class _Texts(torch.utils.data.Dataset):
    """Labelled random token sequences of mixed length, as dicts the Trainer's default collator pads."""

    def __init__(self, n: int = 16) -> None:
        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(4, 30, (n,), generator=g).tolist()
        ids, mask = padded_batch(lengths, seed=1)
        self.rows = [
            {"input_ids": ids[i, :n_], "attention_mask": mask[i, :n_], "labels": int(ids[i, 0] % 2)}
            for i, n_ in enumerate(lengths)
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    n = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), n), 50283 % 512)
    mask = torch.zeros(len(rows), n, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r["input_ids"])] = r["input_ids"]
        mask[i, : len(r["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([r["labels"] for r in rows])}


def test_trainer_trains_saves_and_reloads(tiny_checkpoint, tmp_path):
    folder = tiny_checkpoint("ModernBertForSequenceClassification")
    model = M.ModernBertForSequenceClassification.from_pretrained(folder)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=4, learning_rate=1e-3,
        gradient_checkpointing=True, report_to=[], save_strategy="no", use_cpu=True, logging_steps=1,
        dataloader_num_workers=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = transformers.Trainer(model=model, args=args, train_dataset=_Texts(), data_collator=_collate)
        result = trainer.train()
    assert result.global_step == 4 and torch.isfinite(torch.tensor(result.training_loss))
    assert model.is_gradient_checkpointing
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert "classifier.weight" in changed and any(n.startswith("model.layers.") for n in changed)

    # The Trainer's save_model writes a bare state dict for a class that is not transformers' own;
    # from_pretrained(dir, config=...) loads it back into ours.
    trainer.save_model(str(tmp_path / "trainer_save"))
    model.eval()
    reloaded = M.ModernBertForSequenceClassification.from_pretrained(tmp_path / "trainer_save", config=model.config)
    ids, mask = padded_batch([17, 5], seed=9)
    with torch.no_grad():
        expected = model(ids, mask).logits
        assert torch.equal(reloaded(ids, mask).logits, expected)

    # Saved with our save_pretrained, the trained model loads in transformers with equal logits.
    model.save_pretrained(tmp_path / "ours")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = transformers.ModernBertForSequenceClassification.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        assert (ref(input_ids=ids, attention_mask=mask).logits - expected).abs().max() < 1e-4


def test_peft_lora_trains_merges_saves_and_reloads(tiny_checkpoint, tmp_path):
    folder = tiny_checkpoint("ModernBertForSequenceClassification")
    model = M.ModernBertForSequenceClassification.from_pretrained(folder)
    config = peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["Wqkv", "Wo", "Wi"])
    lora = peft.get_peft_model(model, config)
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert not any(n.endswith("Wqkv.base_layer.weight") for n in trainable)
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    batch = _collate([_Texts()[i] for i in range(8)])
    losses = []
    lora.train()
    for _ in range(5):
        loss = lora(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    lora.eval()
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        adapted = lora(input_ids=ids, attention_mask=mask).logits
    lora.save_pretrained(tmp_path / "adapter")
    merged = lora.merge_and_unload()
    assert isinstance(merged, M.ModernBertForSequenceClassification)
    with torch.no_grad():
        assert (merged(ids, mask).logits - adapted).abs().max() < 1e-4
    merged.save_pretrained(tmp_path / "merged")
    again = M.ModernBertForSequenceClassification.from_pretrained(tmp_path / "merged")
    with torch.no_grad():
        assert (again(ids, mask).logits - adapted).abs().max() < 1e-4
    # The adapter folder reloads onto a fresh base model.
    base = M.ModernBertForSequenceClassification.from_pretrained(folder)
    restored = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert (restored(input_ids=ids, attention_mask=mask).logits - adapted).abs().max() < 1e-4
