"""Left/right-swap-tolerant loss for sources with noisy left/right labels (LSPET)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from starpose import COCO_SPEC
from starpose.data.errors import DataError
from starpose.data.mix import load_mix, source_samples
from starpose.data.targets import KLDiscretLoss, limb_swap_groups, simcc_targets
from starpose.data.topdown import TopDownDataset, collate
from starpose.spec import MPII_SPEC

from test_mix import write_coco, write_lsp, write_mix

ARMS = ((5, 6), (7, 8), (9, 10))
LEGS = ((11, 12), (13, 14), (15, 16))


def test_groups_from_keypoint_names():
    assert limb_swap_groups(COCO_SPEC.keypoint_names) == (ARMS, LEGS)
    assert limb_swap_groups(("nose", "left_eye", "right_eye")) == ()
    # MPII's 16 joints in its own order: the groups follow the names
    assert limb_swap_groups(MPII_SPEC.keypoint_names) == (((13, 12), (14, 11), (15, 10)), ((3, 2), (4, 1), (5, 0)))


def _people(n: int, seed: int):
    """n people's SimCC labels on a 192x256 crop, random keypoints, all visible."""
    rng = np.random.default_rng(seed)
    tx, ty, w = [], [], []
    for _ in range(n):
        kp = rng.uniform((20, 20), (172, 236), size=(17, 2))
        a, b, c = simcc_targets(kp, np.ones(17), (192, 256))
        tx.append(a), ty.append(b), w.append(c)
    return torch.tensor(np.stack(tx)), torch.tensor(np.stack(ty)), torch.tensor(np.stack(w))


def _swap(t: torch.Tensor, groups) -> torch.Tensor:
    perm = list(range(17))
    for g in groups:
        for a, b in g:
            perm[a], perm[b] = b, a
    return t[:, perm]


def test_no_mask_is_the_plain_loss():
    tx, ty, w = _people(3, 0)
    pred = (torch.randn(tx.shape), torch.randn(ty.shape))
    plain = KLDiscretLoss()(pred, (tx, ty), w)
    tol = KLDiscretLoss(swap_groups=(ARMS, LEGS))
    torch.testing.assert_close(tol(pred, (tx, ty), w), plain)
    torch.testing.assert_close(tol(pred, (tx, ty), w, swap_mask=torch.zeros(3, dtype=torch.bool)), plain)
    torch.testing.assert_close(tol.per_keypoint(pred, (tx, ty), w).sum() / 17, plain)


def test_each_group_takes_the_better_assignment_for_marked_people_only():
    tx, ty, w = _people(4, 1)
    w[2, 9] = 0.0  # one unlabelled wrist: its weight moves with the swap
    pred = (torch.randn(tx.shape, requires_grad=True), torch.randn(ty.shape, requires_grad=True))
    mask = torch.tensor([True, False, True, True])
    plain = KLDiscretLoss()
    loss = KLDiscretLoss(swap_groups=(ARMS, LEGS))(pred, (tx, ty), w, swap_mask=mask)
    # brute force, one person at a time: every combination of swapped arms / legs, the best for the marked
    expect = 0.0
    for i in range(4):
        p = (pred[0][i:i + 1], pred[1][i:i + 1])
        options = []
        for groups in ((), (ARMS,), (LEGS,), (ARMS, LEGS)) if mask[i] else ((),):
            t = (_swap(tx[i:i + 1], groups), _swap(ty[i:i + 1], groups))
            options.append(plain(p, t, _swap(w[i:i + 1], groups)))
        expect = expect + min(options)
    torch.testing.assert_close(loss, expect)
    loss.backward()
    assert pred[0].grad.abs().sum() > 0


def test_labels_that_swapped_the_arms_cost_what_correct_labels_cost():
    tx, ty, w = _people(2, 2)
    # predictions that put all the mass on the labels
    pred = (torch.log(tx + 1e-9), torch.log(ty + 1e-9))
    bad = (_swap(tx, (ARMS,)), _swap(ty, (ARMS,)))
    tol = KLDiscretLoss(swap_groups=(ARMS, LEGS))
    exact = tol(pred, (tx, ty), w)
    assert tol(pred, bad, w) > exact + 0.01  # unmarked: the swapped labels are penalised (KL per bin)
    torch.testing.assert_close(tol(pred, bad, w, swap_mask=torch.tensor([True, True])), exact)
    # half marked: only the marked person is forgiven
    half = tol(pred, bad, w, swap_mask=torch.tensor([True, False]))
    assert exact < half < tol(pred, bad, w)


def test_mix_marks_its_people_and_rejects_a_non_boolean(tmp_path):
    write_lsp(tmp_path / "lsp", 4)
    write_coco(tmp_path / "c", 1)
    srcs = [{"name": "lsp", "format": "lsp", "path": "{d}/lsp", "weight": 2, "swap_tolerant": True},
            {"name": "c", "format": "coco", "path": "{d}/c/person_keypoints.json"}]
    mix = load_mix(write_mix(tmp_path, srcs))
    assert [s.swap_tolerant for s in mix.sources] == [True, False]
    assert mix.summary()["sources"][0]["swap_tolerant"] is True and "swap_tolerant" not in mix.summary()["sources"][1]
    lsp = source_samples(mix.sources[0], COCO_SPEC)
    coco = source_samples(mix.sources[1], COCO_SPEC)
    ds = TopDownDataset(lsp + coco, COCO_SPEC, train=True, seed=0)
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["swap_tolerant"].tolist() == [True] * len(lsp) + [False] * len(coco)
    with pytest.raises(DataError, match=r"swap_tolerant must be true or false") as e:
        load_mix(write_mix(tmp_path, [{**srcs[0], "swap_tolerant": "yes"}]))
    assert "mix.json" in str(e.value)


def test_cli_swap_tolerant_trains_and_refuses_unknown_names(tmp_path):
    from click.testing import CliRunner
    from safetensors import safe_open

    from starpose.cli import main

    write_lsp(tmp_path / "lsp", 6)
    mix = write_mix(tmp_path, [{"name": "lsp", "format": "lsp", "path": "{d}/lsp"}])
    r = CliRunner().invoke(main, ["train", "--mix", str(mix), "--swap-tolerant", "zzz", "--epochs", "1",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code != 0 and "zzz" in r.output and "unknown source" in r.output
    assert not (tmp_path / "w").exists()
    r = CliRunner().invoke(main, ["train", "--ann-file", "a.json", "--img-dir", ".", "--swap-tolerant", "lsp"])
    assert r.exit_code != 0
    r = CliRunner().invoke(main, ["train", "--mix", str(mix), "--swap-tolerant", "lsp", "--epochs", "1",
                                  "--batch-size", "3", "--epoch-size", "3", "--quiet", "--threads", "2",
                                  "--work-dir", str(tmp_path / "w")])
    assert r.exit_code == 0, r.output
    assert "left/right swaps forgiven (arms, legs each) for: lsp" in r.output
    with safe_open(str(tmp_path / "w" / "final.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["mix"])["sources"][0]["swap_tolerant"] is True
