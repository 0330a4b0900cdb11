"""Run under `torchrun --nproc_per_node 2 tests/ddp_worker.py OUT`: trains 2 steps of HRPO on
tiny-random, then each rank writes its trainable parameters and the questions it trained on."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from safetensors.torch import save_file

from hrpo.config import TrainConfig
from hrpo.trainer import Trainer

out = Path(sys.argv[1])
cfg = TrainConfig(model="tiny-random", task="arith", steps=2, group_size=2, batch_prompts=1, max_new_tokens=12,
                  out=str(out), lr=1e-2, gate_lr=1e-2, lambda_lr=1e-2, max_grad_norm=1.0, lora_rank=4,
                  lora_alpha=8, device="cpu", seed=5)
trainer = Trainer(cfg)
questions = []
for step in range(cfg.steps):
    trainer.train_step(step)
    questions += [p.question for p in trainer.seen]
rank = trainer.acc.process_index
params = {n: p.detach().clone().contiguous() for n, p in trainer.policy.named_parameters() if p.requires_grad}
save_file(params, out / f"rank{rank}.safetensors")
(out / f"rank{rank}.json").write_text(json.dumps({"world": trainer.acc.num_processes, "questions": questions}))
trainer.acc.wait_for_everyone()
torch.distributed.destroy_process_group()          # a clean exit: no gloo thread left at shutdown
