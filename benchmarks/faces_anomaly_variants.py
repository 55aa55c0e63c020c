"""Variants of the face-anomaly scores, judged first on *development* anomalies, then on the suite.

``faces_anomaly.py`` reports the recipe and ``--score auto``. This script asks whether another
way of scoring the same trained recipe model would do better, without tuning on the suite:

* **Development kinds** (``DEV_KINDS``), ten ways an image can differ from a normal face that are
  *not* the suite's seven kinds. They are made from the CelebA subset's validation split, faces
  300-599, and scored against faces 0-299 of that split. The suite's normals (the test split) and
  its anomalies take no part in them. A variant is worth keeping when it wins here; the suite
  columns show whether that carries over.
* **Pseudo-anomalies**: the families ``auto`` chooses with (``latentlab.anomaly.pseudo``), made from
  the run's held-out validation faces.

Variants: the shipped ``features`` score (one Ledoit-Wolf Gaussian per encoder layer on pooled
statistics, summed); the same with a plain covariance and a small ridge; the layers joined by their
standardised maximum; two-sided reconstruction errors (|standardised log error|: the typicality
test of Nalisnick et al., 2019, since an image reconstructed *better* than normal faces is as
atypical as a worse one); PaDiM (Defard et al., ICPR 2020): one Gaussian per position of each
encoder map, pooled to at most 8x8; deep nearest neighbours (Bergman et al., 2020) in the pooled
statistics; and their standardised maxima with ``ssim``. Last, which
candidate ``auto``'s ranking would choose if the development kinds were added to its families.

    python benchmarks/faces_anomaly.py --out /tmp/faces-suite          # trains the recipe run
    python benchmarks/faces_anomaly_variants.py --run /tmp/faces-suite/recipe
    python benchmarks/faces_anomaly_variants.py --run /tmp/faces-suite/recipe --auto-only   # the shipped detector only
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faces_anomaly as fa

DEV_KINDS = ("rot90", "invert", "hue120", "blur", "jpeg8", "occlude", "saturate", "low-contrast", "shapes",
             "mirror-half")
GRID = 8  # PaDiM: maps pooled to at most GRID x GRID positions
Score = Callable[[str], np.ndarray]


def dev_sets(valid: np.ndarray, seed: int = 123) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(normal development faces, kind -> anomalies), uint8 (N, 64, 64, 3): faces 0-299 of the
    validation split are the normals, each kind is made from faces 300-599."""
    from PIL import Image, ImageFilter

    from latentlab.data.sources import load_source

    rng = np.random.default_rng(seed)
    normal, src = valid[:300], valid[300:600]
    f32 = src.astype(np.float32)
    grey = f32.mean(-1, keepdims=True)

    def each(change: Callable[[Image.Image], Image.Image]) -> np.ndarray:
        return np.stack([np.asarray(change(Image.fromarray(a)).convert("RGB")) for a in src])

    def jpeg(im: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=8)
        return Image.open(io.BytesIO(buf.getvalue()))

    def hue(im: Image.Image) -> Image.Image:
        h, s, v = im.convert("HSV").split()
        return Image.merge("HSV", (h.point(lambda x: (x + 85) % 256), s, v))

    occluded = src.copy()
    for image in occluded:
        side = int(rng.integers(18, 30))
        y, x = rng.integers(0, 64 - side, 2)
        image[y:y + side, x:x + side] = rng.integers(0, 256, 3)
    shapes = np.repeat(np.asarray(load_source(f"shapes:{len(src)}").images), 3, axis=-1)
    mirrored = src.copy()
    mirrored[:, :, 32:] = src[:, :, :32][:, :, ::-1]
    kinds = {
        "rot90": np.rot90(src, 1, axes=(1, 2)),
        "invert": 255 - src,
        "hue120": each(hue),
        "blur": each(lambda im: im.filter(ImageFilter.GaussianBlur(1.5))),
        "jpeg8": each(jpeg),
        "occlude": occluded,
        "saturate": np.clip((f32 - grey) * 2.5 + grey, 0, 255),
        "low-contrast": np.clip((f32 - 128) * 0.4 + 128, 0, 255),
        "shapes": shapes,
        "mirror-half": mirrored,
    }
    return normal, {k: np.ascontiguousarray(v).astype(np.uint8) for k, v in kinds.items()}


class Encoded:
    """Per image set: mse, ssim, the latent, the pooled statistics and the (<= 8x8) maps of
    every encoder layer."""

    def __init__(self, run_dir: Path) -> None:
        import torch

        from latentlab.anomaly.evaluate import normal_images
        from latentlab.anomaly.pseudo import PSEUDO_KINDS, make_pseudo
        from latentlab.data.batches import BatchSpec
        from latentlab.data.rule import PreparedSet, load_prepared, model_inputs
        from latentlab.runs import open_run

        run = open_run(run_dir)
        self.model = run.model.eval()
        normal = normal_images(run)
        plain = BatchSpec(value_range=run.rule.value_range)

        def inputs(images: object, batch: BatchSpec) -> torch.Tensor:
            n = len(images)  # type: ignore[arg-type]
            return torch.cat([model_inputs(batch, images, np.arange(i, min(i + 256, n)))
                              for i in range(0, n, 256)]).float()

        def stored(images: np.ndarray) -> torch.Tensor:
            return inputs(PreparedSet(images=np.ascontiguousarray(images), batch=plain), plain)

        test = fa.normal_faces()
        suite = fa.build_suite(test)
        valid = np.asarray(load_prepared(fa.celeba_spec("valid"), BatchSpec()).images)
        dev_normal, dev = dev_sets(valid)
        held = inputs(normal.held_out, run.rule)
        sets = {"fit": inputs(normal.fit, run.rule), "held": held, "test": stored(test),
                "devnorm": stored(dev_normal)}
        sets.update({f"pseudo-{f}": make_pseudo(held, f, run.rule.value_range, seed=i)
                     for i, f in enumerate(PSEUDO_KINDS)})
        sets.update({f"suite-{k}": stored(v) for k, v in suite.items()})
        sets.update({f"dev-{k}": stored(v) for k, v in dev.items()})
        self.pseudo = [f"pseudo-{f}" for f in PSEUDO_KINDS]
        self.suite = [f"suite-{k}" for k in suite]
        self.dev = [f"dev-{k}" for k in dev]
        self.values: dict[str, dict[str, np.ndarray]] = {}
        self.maps: dict[str, list[np.ndarray]] = {}
        self.pooled: dict[str, list[np.ndarray]] = {}
        for name, x in sets.items():
            self._encode(name, x)
            print(f"encoded {name}: {len(x)} images", flush=True)

    def _encode(self, name: str, x: object) -> None:
        import torch
        import torch.nn.functional as F

        from latentlab.anomaly.features import feature_layers, pool
        from latentlab.anomaly.scores import score_parts

        captured: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _i, o: captured.append(o.detach().float()))
                 for m in feature_layers(self.model)]
        parts: dict[str, list[np.ndarray]] = {"mse": [], "ssim": [], "z": []}
        maps: list[list[np.ndarray]] = []
        pooled: list[list[np.ndarray]] = []
        try:
            with torch.no_grad():
                for i in range(0, len(x), 256):  # type: ignore[arg-type]
                    captured.clear()
                    chunk = x[i:i + 256]  # type: ignore[index]
                    z = self.model.embed(chunk)
                    layers = list(captured)  # the encoder's layers for this chunk, in order
                    found = score_parts(self.model, chunk, ["mse", "ssim"])
                    parts["mse"].append(found["mse"].numpy())
                    parts["ssim"].append(found["ssim"].numpy())
                    parts["z"].append(z.float().numpy())
                    if not maps:
                        maps, pooled = [[] for _ in layers], [[] for _ in layers]
                    for j, a in enumerate(layers):
                        size = (min(GRID, a.shape[-2]), min(GRID, a.shape[-1]))
                        maps[j].append(F.adaptive_avg_pool2d(a, size).flatten(2).numpy())
                        pooled[j].append(pool(a).numpy())
        finally:
            for h in hooks:
                h.remove()
        self.values[name] = {k: np.concatenate(v) for k, v in parts.items()}
        self.maps[name] = [np.concatenate(m).astype(np.float64) for m in maps]
        self.pooled[name] = [np.concatenate(p).astype(np.float64) for p in pooled]


def roc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    return fa.roc(normal, anomalous)


def standardised(score: Score) -> Score:
    """The log-score standardised on the held-out normals (median and spread), as ``auto`` does."""
    ref = np.log(np.maximum(score("held"), 1e-12))
    centre, spread = float(np.median(ref)), float(ref.std()) + 1e-12
    return lambda s: (np.log(np.maximum(score(s), 1e-12)) - centre) / spread


def gaussian(fit: np.ndarray, estimator: str) -> Callable[[np.ndarray], np.ndarray]:
    """Mahalanobis distance / sqrt(dim) under one Gaussian fitted on ``fit`` (N, F)."""
    from sklearn.covariance import LedoitWolf

    mean = fit.mean(0)
    if estimator == "ledoit-wolf":
        precision = LedoitWolf().fit(fit).precision_
    else:  # "ridge": the sample covariance plus 1e-3 of its mean variance
        cov = np.cov(fit, rowvar=False)
        precision = np.linalg.inv(cov + 1e-3 * np.trace(cov) / len(cov) * np.eye(len(cov)))

    def distance(x: np.ndarray) -> np.ndarray:
        d = x - mean
        return np.sqrt(np.maximum(((d @ precision) * d).sum(1), 0)) / np.sqrt(len(mean))
    return distance


def padim(enc: Encoded, layer: int) -> Score:
    """PaDiM: one Gaussian per position of the layer's pooled map (ridge 1% of the mean
    variance), the image's score the mean over positions of the Mahalanobis distance."""
    fit = enc.maps["fit"][layer]  # (N, C, P)
    mean = fit.mean(0)
    d = fit - mean
    cov = np.einsum("ncp,ndp->pcd", d, d) / (len(fit) - 1)
    cov += 0.01 * np.trace(cov, axis1=1, axis2=2).mean() / cov.shape[1] * np.eye(cov.shape[1])
    precision = np.linalg.inv(cov)

    def score(s: str) -> np.ndarray:
        y = enc.maps[s][layer] - mean
        return np.sqrt(np.maximum(np.einsum("ncp,pcd,ndp->np", y, precision, y), 0)).mean(1)
    return cached(score)


def knn_layer(enc: Encoded, layer: int, k: int = 5) -> Score:
    """Deep nearest neighbours (Bergman et al. 2020): the mean distance to the k nearest training
    images in the layer's pooled statistics, each dimension scaled to unit variance."""
    from sklearn.neighbors import NearestNeighbors

    fit = enc.pooled["fit"][layer]
    mean, spread = fit.mean(0), fit.std(0) + 1e-6
    index = NearestNeighbors(n_neighbors=k).fit((fit - mean) / spread)

    def score(s: str) -> np.ndarray:
        found = index.kneighbors((enc.pooled[s][layer] - mean) / spread)[0]
        return np.asarray(found.mean(1) / np.sqrt(fit.shape[1]))
    return cached(score)


def cached(score: Score) -> Score:
    memo: dict[str, np.ndarray] = {}
    return lambda s: memo[s] if s in memo else memo.setdefault(s, score(s))


def variants(enc: Encoded) -> dict[str, Score]:
    """name -> score of an image set (higher = more anomalous)."""
    layers = range(len(enc.pooled["fit"]))
    out: dict[str, Score] = {"mse": lambda s: enc.values[s]["mse"], "ssim": lambda s: enc.values[s]["ssim"]}
    per_layer = {}
    for est in ("ledoit-wolf", "ridge"):
        fns = [gaussian(enc.pooled["fit"][j], est) for j in layers]
        per_layer[est] = [cached(lambda s, f=f, j=j: f(enc.pooled[s][j])) for j, f in enumerate(fns)]
        out[f"features ({est}, layers summed)"] = cached(lambda s, fs=per_layer[est]: sum(f(s) for f in fs))
    z_layers = [standardised(f) for f in per_layer["ledoit-wolf"]]
    out["features (layers' standardised max)"] = lambda s: np.max([z(s) for z in z_layers], 0)
    mse, ssim = standardised(out["mse"]), standardised(out["ssim"])
    feats = standardised(out["features (ledoit-wolf, layers summed)"])
    out["two-sided |mse|"] = lambda s: np.abs(mse(s))
    out["two-sided |ssim|"] = lambda s: np.abs(ssim(s))
    out["max(|mse|,features)"] = lambda s: np.maximum(np.abs(mse(s)), feats(s))
    for j in layers:
        out[f"padim layer {j}"] = padim(enc, j)
    knn = [knn_layer(enc, j) for j in layers]
    out["kNN, layers summed"] = cached(lambda s: sum(f(s) for f in knn))
    out["max(mse,features)"] = lambda s: np.maximum(mse(s), feats(s))
    out["max(ssim,features)"] = lambda s: np.maximum(ssim(s), feats(s))
    pad = [standardised(out[f"padim layer {j}"]) for j in layers]
    near = standardised(out["kNN, layers summed"])
    out["max(ssim,kNN)"] = lambda s: np.maximum(ssim(s), near(s))
    for j in layers:
        out[f"max(ssim,padim layer {j})"] = lambda s, p=pad[j]: np.maximum(ssim(s), p(s))
        out[f"max(ssim,features,padim layer {j})"] = lambda s, p=pad[j]: np.max([ssim(s), feats(s), p(s)], 0)
    return out


def row(enc: Encoded, score: Score) -> tuple[float, list[float], list[float]]:
    pseudo = float(np.mean([roc(score("held"), score(k)) for k in enc.pseudo]))
    dev = [roc(score("devnorm"), score(k)) for k in enc.dev]
    suite = [roc(score("test"), score(k)) for k in enc.suite]
    return pseudo, dev, suite


def auto_with_dev(enc: Encoded) -> None:
    """Which candidate ``auto``'s ranking picks from its own families, and with the development
    kinds added (scored against the held-out normals), and what each pick scores on the suite."""
    import torch

    import latentlab.anomaly.auto as auto
    from latentlab.anomaly.density import fit_density

    feats = variants(enc)["features (ledoit-wolf, layers summed)"]
    densities = {k: fit_density(torch.from_numpy(enc.values["fit"]["z"]), k, n_components=8, seed=0)
                 for k in ("mahalanobis", "gmm")}

    def base(s: str) -> dict[str, np.ndarray]:
        out = {"mse": enc.values[s]["mse"], "ssim": enc.values[s]["ssim"], "features": feats(s)}
        out.update({k: d.score(torch.from_numpy(enc.values[s]["z"])).float().numpy() for k, d in densities.items()})
        return out

    specs = auto.candidate_specs(enc.model)
    held = base("held")
    centre, scale = auto.standardisation(held)
    for title, families in (("auto's families", enc.pseudo), ("auto's families + development kinds",
                                                                enc.pseudo + enc.dev)):
        best = auto.rank_candidates(specs, held, {f: base(f) for f in families})[0]
        test = auto.candidate_values(best.parts, base("test"), centre, scale, best.combine)
        suite = [roc(test, auto.candidate_values(best.parts, base(k), centre, scale, best.combine)) for k in enc.suite]
        print(f"| {title} | {best.name} | {best.mean:.3f} | {np.mean(suite):.3f} | {min(suite):.3f} |")


def auto_on_dev(run_dir: Path) -> None:
    """The run's own ``--score auto`` detector (as the suite scores it) on the development kinds,
    against the development normals: anomaly kinds its choice never saw."""
    from latentlab.anomaly.detector import ReconstructionDetector
    from latentlab.anomaly.evaluate import normal_images
    from latentlab.data.batches import BatchSpec
    from latentlab.data.rule import PreparedSet, load_prepared
    from latentlab.runs import open_run

    run = open_run(run_dir)
    normal = normal_images(run)
    det = ReconstructionDetector(run, score="auto").fit(normal.fit, held_out=normal.held_out)
    plain = BatchSpec(value_range=run.rule.value_range)
    valid = np.asarray(load_prepared(fa.celeba_spec("valid"), BatchSpec()).images)
    dev_normal, dev = dev_sets(valid)

    def scores(images: np.ndarray) -> np.ndarray:
        return det.decision_function(PreparedSet(images=np.ascontiguousarray(images), batch=plain))

    base = scores(dev_normal)
    aucs = {kind: roc(base, scores(images)) for kind, images in dev.items()}
    print(f"\n{run_dir} with --score auto ({det.choice_.name}) on the development kinds:")  # type: ignore[attr-defined]
    print("| " + " | ".join(aucs) + " | mean | min |")
    print("|---" * (len(aucs) + 2) + "|")
    print("| " + " | ".join(f"{v:.3f}" for v in aucs.values())
          + f" | {np.mean(list(aucs.values())):.3f} | {min(aucs.values()):.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run trained by faces_anomaly.py (its recipe)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--auto-only", action="store_true",
                        help="only the run's own --score auto on the development kinds (no variants)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.auto_only:
        auto_on_dev(args.run)
        return 0
    enc = Encoded(args.run)
    names = [k[4:] for k in enc.dev] + [k[6:] for k in enc.suite]
    print("\n| score | pseudo mean | dev mean | dev min | " + " | ".join(names) + " | suite mean | suite min |")
    print("|---" * (len(names) + 6) + "|")
    for name, score in variants(enc).items():
        pseudo, dev, suite = row(enc, score)
        print(f"| {name} | {pseudo:.3f} | {np.mean(dev):.3f} | {min(dev):.3f} | "
              + " | ".join(f"{v:.2f}" for v in dev + suite) + f" | {np.mean(suite):.3f} | {min(suite):.3f} |")
    print("\n| auto ranks by | chooses | its mean over those families | suite mean | suite min |")
    print("|---|---|---|---|---|")
    auto_with_dev(enc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
