"""The course sample code's training script (ML2022 HW8), as a whole process: the reference that
``short_run.py`` times ``latentlab train`` against.

It does what the sample does: ``np.load`` the training set, a Dataset that converts each image
to float in [-1, 1] in ``__getitem__`` (``common.CourseDataset``), a DataLoader with a
RandomSampler, the fully connected autoencoder (here with fcn-1024's layers: 12288 -> 1024 ->
12288, Tanh), ``torch.optim.Adam`` at lr 1e-3, ``nn.MSELoss``, ``loss.item()`` every step, and
``torch.save(model)`` when an epoch's mean loss is the best so far, and at the end. ``--marks``
prints when the first and the last step ended (``loss.item()`` has synchronised them already).

    python benchmarks/course_loop.py --data images.npy --out /tmp/course --epochs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CourseDataset


class FCNAutoencoder(nn.Module):
    """The course's ``fcn_autoencoder`` with fcn-1024's widths."""

    def __init__(self, pixels: int = 64 * 64 * 3, latent: int = 1024) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(pixels, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, pixels), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="uint8 (N, 64, 64, 3) .npy")
    parser.add_argument("--out", type=Path, required=True, help="folder for the saved models")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--marks", action="store_true", help="print when the first and last steps end")
    args = parser.parse_args()

    torch.manual_seed(0)
    train = np.load(args.data, allow_pickle=True)
    loader = DataLoader(CourseDataset(train), sampler=RandomSampler(train), batch_size=args.batch_size)
    model = FCNAutoencoder().to(args.device)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    args.out.mkdir(parents=True, exist_ok=True)
    best_loss = np.inf
    model.train()
    step, last = 0, 0.0
    for _epoch in range(args.epochs):
        tot_loss = []
        for data in loader:
            img = data.float().to(args.device)
            img = img.view(img.shape[0], -1)
            output = model(img)
            loss = criterion(output, img)
            tot_loss.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step, last = step + 1, time.monotonic()
            if args.marks and step == 1:
                print(f"MARK first_step {last:.6f}", flush=True)
        mean_loss = np.mean(tot_loss)
        if mean_loss < best_loss:
            best_loss = mean_loss
            torch.save(model, args.out / "best_model_fcn.pt")
    torch.save(model, args.out / "last_model_fcn.pt")
    if args.marks:
        print(f"MARK last_step {last:.6f}", flush=True)


if __name__ == "__main__":
    main()
