"""Feature capture: what generation sees, correct masking, the disk cache, bad files, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from musicrfm.capture.decoder import block_hooks, capture_codes, pooled_reference
from musicrfm.capture.extract import extract_features
from musicrfm.capture.features import FeatureSet
from musicrfm.capture.options import CaptureOptions
from musicrfm.cli import main
from musicrfm.errors import CompatibilityError, DatasetError
from musicrfm.models import MusicGenAdapter, block_output, random_model

ATOL = 2e-5


@pytest.fixture(scope="module")
def tiny() -> MusicGenAdapter:
    torch.set_num_threads(1)
    return random_model("tiny", seed=0)


@pytest.fixture(scope="module")
def melody() -> MusicGenAdapter:
    torch.set_num_threads(1)
    return random_model("tiny-melody", seed=0)


def _tone(freq: float, seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2.5 * freq * t)).astype(
        np.float32
    )


def _write_dataset(folder: Path, *, bad: bool = True) -> Path:
    """Tiny labelled dataset: tones of mixed lengths/rates/channels (+ a corrupt and a silent file)."""
    (folder / "audio").mkdir(parents=True)
    rows = []
    specs = [
        ("C", 261.6, 0.6, 32000, 1),
        ("D", 293.7, 0.4, 44100, 2),
        ("E", 329.6, 0.6, 22050, 1),
        ("F", 349.2, 0.3, 32000, 1),
        ("G", 392.0, 0.5, 32000, 2),
    ]
    for i, (label, freq, seconds, sr, ch) in enumerate(specs):
        x = _tone(freq, seconds, sr)
        rel = f"audio/{i:02d}_{label}.wav"
        sf.write(folder / rel, np.stack([x] * ch, axis=1) if ch > 1 else x, sr)
        rows.append({"path": rel, "note": label, "octave": 4})
    if bad:
        (folder / "audio/corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
        rows.insert(2, {"path": "audio/corrupt.wav", "note": "X", "octave": 0})
        sf.write(folder / "audio/silent.wav", np.zeros(8000, dtype=np.float32), 16000)
        rows.append({"path": "audio/silent.wav", "note": "S", "octave": 0})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("ds") / "notes")


# --------------------------------------------------------------------------- generation
def _generate_recording(
    adapter: MusicGenAdapter, batch: int, steps: int, guidance: float, seed: int = 7
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Sample with fixed seed; record every block's output and the fed ids at each position."""
    by_pos: list[dict[int, torch.Tensor]] = [{} for _ in range(adapter.num_layers)]
    fed: dict[int, torch.Tensor] = {}
    state = {"start": 0, "prefix": None, "n": 0}

    def pre(_m, _args, kwargs):  # noqa: ANN001, ANN202
        ids = kwargs["input_ids"]
        cache = kwargs.get("cache")
        past = cache.get_seq_length() if cache is not None else 0
        state["n"] = ids.shape[-1]
        # position of the first fed decoder token (Melody's cache also holds the prefix)
        state["start"] = 0 if past == 0 else past - (state["prefix"] or 0)
        for j in range(ids.shape[-1]):
            fed[state["start"] + j] = ids[:, j].clone()

    def on_block(layer: int, hidden: torch.Tensor) -> None:
        if layer == 0 and state["start"] == 0:
            state["prefix"] = hidden.shape[1] - state["n"]
        for j in range(state["n"]):
            by_pos[layer][state["start"] + j] = hidden[:, hidden.shape[1] - state["n"] + j].clone()

    got: dict[str, torch.Tensor] = {}
    original = adapter.model.audio_encoder.decode

    def decode(codes, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        got["codes"] = codes.clone()
        return original(codes, *args, **kwargs)

    adapter.model.audio_encoder.decode = decode
    handle = adapter.decoder_base.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        with block_hooks(adapter, on_block):
            torch.manual_seed(seed)
            adapter.model.generate(
                **adapter.tokenize([""] * batch),
                do_sample=True,
                max_new_tokens=steps,
                guidance_scale=guidance,
            )
    finally:
        handle.remove()
        del adapter.model.audio_encoder.decode
    n_pos = len(fed)
    assert sorted(fed) == list(range(n_pos))
    fed_ids = torch.stack([fed[i] for i in range(n_pos)], dim=1)
    hidden = [torch.stack([d[i] for i in range(n_pos)], dim=1) for d in by_pos]
    return got["codes"][0], fed_ids, hidden


@pytest.mark.parametrize(("which", "guidance"), [("tiny", 1.0), ("tiny", 3.0), ("melody", 1.0)])
def test_features_are_what_generation_computes(
    which: str, guidance: float, request: pytest.FixtureRequest
) -> None:
    adapter: MusicGenAdapter = request.getfixturevalue(which)
    batch, steps = 2, 18
    codes, fed_ids, gen_hidden = _generate_recording(adapter, batch, steps, guidance)
    k = adapter.num_codebooks
    frames = steps + 1 - k  # generate returns max_length - K frames
    assert codes.shape == (batch, k, frames)
    inputs = adapter.decoder_input_from_codes(codes)
    n_pos = fed_ids.shape[1]
    assert n_pos == frames + k - 1  # steps fed: every position but the last
    # the layout is token for token what generate fed the decoder (conditional rows)
    assert torch.equal(inputs.input_ids[:, :n_pos], fed_ids[: batch * k])
    # teacher-forced block outputs == generation's, position by position, every layer
    teacher: list[torch.Tensor] = [torch.empty(0)] * adapter.num_layers

    def keep(layer: int, hidden: torch.Tensor) -> None:
        teacher[layer] = hidden[:, hidden.shape[1] - inputs.input_ids.shape[1] :]

    with block_hooks(adapter, keep):
        adapter.run_decoder(inputs.input_ids, prompt="")
    for layer in range(adapter.num_layers):
        torch.testing.assert_close(
            teacher[layer][:, :n_pos], gen_hidden[layer][:batch], atol=ATOL, rtol=1e-4
        )
    # and the pooled features are the mean of generation's states at steps 1..T
    feats = capture_codes(adapter, codes, pooling="mean", prompt="")
    for layer in range(adapter.num_layers):
        expected = gen_hidden[layer][:batch, 1 : frames + 1].mean(dim=1)
        torch.testing.assert_close(feats.pooled[layer], expected, atol=ATOL, rtol=1e-4)


# --------------------------------------------------------------------------- masking
def test_pooling_matches_output_hidden_states_on_mixed_length_batch(tiny: MusicGenAdapter) -> None:
    sr = tiny.sample_rate
    waves = [_tone(440, 0.7, sr), _tone(220, 0.24, sr), _tone(330, 0.5, sr)]
    codes, mask = tiny.encode_audio(waves)
    lengths = mask.sum(-1).tolist()
    assert len(set(lengths)) == 3  # really mixed lengths
    inputs = tiny.decoder_input_from_codes(codes, mask)
    tok = tiny.tokenize([""] * 3)
    with torch.inference_mode():
        out = tiny.model(
            **tok,
            decoder_input_ids=inputs.input_ids,
            decoder_attention_mask=inputs.attention_mask,
            output_hidden_states=True,
        )
    hs = out.decoder_hidden_states
    n_layers = tiny.num_layers
    assert len(hs) == n_layers + 1  # embeddings, blocks 0..L-2, post-LayerNorm top
    pos = inputs.frame_mask
    for pooling in ("mean", "last", "max"):
        feats = capture_codes(tiny, codes, mask, pooling=pooling, prompt="", keep_frames=True)
        assert feats.pooled.shape == (n_layers, 3, tiny.hidden_size)
        assert feats.lengths == lengths
        for layer in range(n_layers - 1):  # hidden_states[i + 1] is block i's output
            ref = pooled_reference(hs[layer + 1], pos, pooling)
            torch.testing.assert_close(feats.pooled[layer], ref, atol=ATOL, rtol=1e-4)
        # hidden_states[-1] is NOT block L-1's output but its final LayerNorm
        assert feats.frames is not None
        top = feats.frames[-1]  # (sum lengths, d), block L-1 output at the valid positions
        ln = tiny.decoder_base.layer_norm
        with torch.inference_mode():
            torch.testing.assert_close(ln(top), hs[-1][pos], atol=ATOL, rtol=1e-4)
        assert not torch.allclose(top, hs[-1][pos], atol=1e-2)
    # masking: each clip pooled alone equals the same clip inside the padded batch
    batch = capture_codes(tiny, codes, mask, pooling="mean")
    for i, wave in enumerate(waves):
        alone = capture_codes(tiny, *tiny.encode_audio([wave]), pooling="mean")
        torch.testing.assert_close(alone.pooled[:, 0], batch.pooled[:, i], atol=ATOL, rtol=1e-4)


def test_melody_batch_equals_single(melody: MusicGenAdapter) -> None:
    sr = melody.sample_rate
    waves = [_tone(440, 0.5, sr), _tone(220, 0.2, sr)]
    codes, mask = melody.encode_audio(waves)
    batch = capture_codes(melody, codes, mask, pooling="max")
    for i, wave in enumerate(waves):
        alone = capture_codes(melody, *melody.encode_audio([wave]), pooling="max")
        torch.testing.assert_close(alone.pooled[:, 0], batch.pooled[:, i], atol=ATOL, rtol=1e-4)


def test_prompt_changes_features_and_null_prompt_works(tiny: MusicGenAdapter) -> None:
    codes, mask = tiny.encode_audio([_tone(440, 0.3, tiny.sample_rate)])
    empty = capture_codes(tiny, codes, mask, prompt="").pooled
    text = capture_codes(tiny, codes, mask, prompt="jazz piano").pooled
    null = capture_codes(tiny, codes, mask, prompt=None).pooled
    assert torch.isfinite(null).all()
    assert not torch.allclose(empty, text) and not torch.allclose(empty, null)


# --------------------------------------------------------------------------- extract + cache
def test_extract_features_end_to_end_with_bad_files(
    tiny: MusicGenAdapter, dataset: Path, tmp_path: Path
) -> None:
    fs = extract_features(tiny, dataset, cache_dir=tmp_path / "cache", batch_size=2, progress=False)
    assert isinstance(fs, FeatureSet)
    assert fs.features.shape == (4, 5, 64)
    assert fs.rows["note"].tolist() == ["C", "D", "E", "F", "G"]  # manifest order, bad ones out
    skipped = {Path(s["path"]).name: s["error"] for s in fs.meta["skipped"]}
    assert set(skipped) == {"corrupt.wav", "silent.wav"}
    assert "corrupt" in skipped["corrupt.wav"] and "silent" in skipped["silent.wav"]
    for key in ("model_id", "fingerprint", "pooling", "prompt", "layer_convention", "dataset_hash"):
        assert key in fs.meta
    assert fs.meta["pooling"] == "mean" and fs.meta["prompt"] == ""
    assert CaptureOptions.from_dict(fs.meta["options"]) == CaptureOptions(batch_size=2)
    # one clip checked against a direct capture
    from musicrfm.capture.audio import load_audio

    wave = load_audio(dataset / "audio/02_E.wav", tiny.sample_rate)
    direct = capture_codes(tiny, *tiny.encode_audio([wave])).pooled[:, 0]
    torch.testing.assert_close(fs.features[:, 2], direct, atol=ATOL, rtol=1e-4)


def _count_decoder_runs(monkeypatch: pytest.MonkeyPatch, adapter: MusicGenAdapter) -> list[int]:
    calls: list[int] = []
    original = adapter.run_decoder

    def counting(input_ids, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls.append(input_ids.shape[0] // adapter.num_codebooks)
        return original(input_ids, **kwargs)

    monkeypatch.setattr(adapter, "run_decoder", counting)
    return calls


def test_cache_hit_miss_and_no_silent_reuse(
    tiny: MusicGenAdapter, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    calls = _count_decoder_runs(monkeypatch, tiny)
    first = extract_features(tiny, dataset, cache_dir=cache, batch_size=4, progress=False)
    assert sum(calls) == 5
    again = extract_features(tiny, dataset, cache_dir=cache, batch_size=4, progress=False)
    assert sum(calls) == 5  # cache hit: no decoder run at all
    torch.testing.assert_close(again.features, first.features)
    assert again.meta["skipped"] == first.meta["skipped"]
    # other options -> another entry, computed afresh
    other = extract_features(tiny, dataset, cache_dir=cache, pooling="max", progress=False)
    assert sum(calls) == 10 and not torch.allclose(other.features, first.features)
    # another model -> another entry
    seed1 = random_model("tiny", seed=1)
    calls1 = _count_decoder_runs(monkeypatch, seed1)
    extract_features(seed1, dataset, cache_dir=cache, progress=False)
    assert sum(calls1) == 5
    assert len(list(cache.iterdir())) == 3
    # an entry whose stored key does not match is refused, not reused
    entry = Path(first.meta["cache"])
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["key"]["pooling"] = "last"
    (entry / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CompatibilityError, match="pooling"):
        extract_features(tiny, dataset, cache_dir=cache, batch_size=4, progress=False)


def test_changed_audio_file_is_a_cache_miss(
    tiny: MusicGenAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _write_dataset(tmp_path / "ds", bad=False)
    calls = _count_decoder_runs(monkeypatch, tiny)
    a = extract_features(tiny, ds, cache_dir=tmp_path / "c", progress=False)
    sf.write(ds / "audio/00_C.wav", _tone(500.0, 0.6, 32000), 32000)
    b = extract_features(tiny, ds, cache_dir=tmp_path / "c", progress=False)
    assert sum(calls) == 10 and a.meta["dataset_hash"] != b.meta["dataset_hash"]
    assert not torch.allclose(a.features[:, 0], b.features[:, 0])


def test_interrupted_run_resumes(
    tiny: MusicGenAdapter, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = extract_features(tiny, dataset, use_cache=False, progress=False)
    original = tiny.encode_audio
    n = {"calls": 0}

    def flaky(waves):  # noqa: ANN001, ANN202
        n["calls"] += 1
        if n["calls"] == 3:
            raise KeyboardInterrupt
        return original(waves)

    monkeypatch.setattr(tiny, "encode_audio", flaky)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        extract_features(tiny, dataset, cache_dir=cache, batch_size=2, shard_size=2, progress=False)
    (entry,) = cache.iterdir()
    state = json.loads((entry / "manifest.json").read_text())
    assert not state["complete"]
    done = sum(len(s["indices"]) for s in state["shards"]) + len(state["skipped"])
    assert 0 < done < 7
    monkeypatch.setattr(tiny, "encode_audio", original)
    calls = _count_decoder_runs(monkeypatch, tiny)
    resumed = extract_features(tiny, dataset, cache_dir=cache, batch_size=2, progress=False)
    done_clips = sum(len(s["indices"]) for s in state["shards"])
    assert sum(calls) == 5 - done_clips  # only what was missing
    torch.testing.assert_close(resumed.features, reference.features, atol=ATOL, rtol=1e-4)
    assert resumed.rows.equals(reference.rows)
    assert len(resumed.meta["skipped"]) == 2


def test_keep_frames_round_trip(tiny: MusicGenAdapter, dataset: Path, tmp_path: Path) -> None:
    fs = extract_features(
        tiny, dataset, keep_frames=True, cache_dir=tmp_path / "c", batch_size=3, progress=False
    )
    assert fs.frames is not None and fs.frame_offsets is not None
    for i in range(len(fs)):
        frames = fs.clip_frames(i)
        assert frames.shape[0] == 4 and frames.shape[2] == 64
        torch.testing.assert_close(frames.mean(dim=1), fs.features[:, i], atol=ATOL, rtol=1e-4)
    assert fs.clip_frames(0).shape[1] == 30  # 0.6 s at 50 Hz
    fs.save(tmp_path / "out")
    back = FeatureSet.load(tmp_path / "out")
    torch.testing.assert_close(back.frames, fs.frames)
    sub = back.subset(back.rows["note"].isin(["D", "F"]).to_numpy())
    assert len(sub) == 2 and sub.rows["note"].tolist() == ["D", "F"]
    torch.testing.assert_close(sub.clip_frames(1), fs.clip_frames(3))
    # cached frames come back identically
    again = extract_features(
        tiny, dataset, keep_frames=True, cache_dir=tmp_path / "c", batch_size=3, progress=False
    )
    torch.testing.assert_close(again.frames, fs.frames)
    # the same options as one value: the same cache entry, the same frames
    opts = CaptureOptions.from_dict(back.meta["options"])
    assert opts.keep_frames and opts.batch_size == 3
    third = extract_features(tiny, dataset, opts, cache_dir=tmp_path / "c", progress=False)
    assert third.meta["cache"] == fs.meta["cache"]
    torch.testing.assert_close(third.frames, fs.frames)


def test_bad_inputs(tiny: MusicGenAdapter, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="has no manifest|no manifest"):
        extract_features(tiny, tmp_path, use_cache=False)
    with pytest.raises(DatasetError, match="no dataset"):
        extract_features(tiny, tmp_path / "missing", use_cache=False)
    pd.DataFrame({"file": ["a.wav"]}).to_csv(tmp_path / "manifest.csv", index=False)
    with pytest.raises(DatasetError, match="path. column"):
        extract_features(tiny, tmp_path, use_cache=False)
    from musicrfm.errors import ConfigError

    with pytest.raises(ConfigError, match="pooling"):
        extract_features(tiny, tmp_path, pooling="median", use_cache=False)


def test_dataframe_input_and_all_bad(tiny: MusicGenAdapter, tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"nope")
    fs = extract_features(
        tiny, pd.DataFrame({"path": [str(tmp_path / "bad.wav")], "y": [1]}), use_cache=False
    )
    assert len(fs) == 0 and fs.features.shape == (4, 0, 64) and fs.meta["num_skipped"] == 1


def test_cli_extract(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "features"
    code = main(
        [
            "extract",
            "--data",
            str(dataset),
            "--model",
            "random:tiny",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--batch-size",
            "3",
            "--no-progress",
        ]
    )
    assert code == 0
    fs = FeatureSet.load(out)
    assert fs.features.shape == (4, 5, 64) and fs.meta["model_id"] == "random:tiny:seed0"
    assert "2 files skipped" in capsys.readouterr().out
    assert main(["extract", "--data", str(tmp_path / "nope"), "--model", "random:tiny",
                 "--out", str(out), "--no-progress"]) == 2  # fmt: skip
    assert "no dataset" in capsys.readouterr().err


def test_block_hooks_remove_themselves(tiny: MusicGenAdapter) -> None:
    before = [len(layer._forward_hooks) for layer in tiny.decoder_layers]
    with pytest.raises(RuntimeError), block_hooks(tiny, lambda _l, _h: None):
        raise RuntimeError
    assert [len(layer._forward_hooks) for layer in tiny.decoder_layers] == before
    assert block_output(torch.ones(2, 3, 4)).shape == (2, 3, 4)


def test_bfloat16_model_gives_close_features(tiny: MusicGenAdapter) -> None:
    half = random_model("tiny", seed=0, dtype="bfloat16")
    assert half.dtype == torch.bfloat16 and half.info()["dtype"] == "bfloat16"
    wave = [_tone(440, 0.4, tiny.sample_rate)]
    codes, mask = tiny.encode_audio(wave)
    ref = capture_codes(tiny, codes, mask).pooled
    got = capture_codes(half, codes, mask).pooled
    assert got.dtype == torch.float32  # pooled in float32 whatever the model dtype
    cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
    assert cos.min() > 0.98


def test_a_clip_the_model_fails_on_is_skipped_not_fatal(
    tiny: MusicGenAdapter, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = tiny.encode_audio

    def picky(waves):  # noqa: ANN001, ANN202
        if any(len(w) == int(0.3 * tiny.sample_rate) for w in waves):  # the 0.3 s "F" clip
            raise RuntimeError("codec exploded")
        return original(waves)

    monkeypatch.setattr(tiny, "encode_audio", picky)
    fs = extract_features(tiny, dataset, batch_size=4, use_cache=False, progress=False)
    assert fs.rows["note"].tolist() == ["C", "D", "E", "G"]
    errors = {Path(s["path"]).name: s["error"] for s in fs.meta["skipped"]}
    assert "codec exploded" in errors["03_F.wav"] and len(errors) == 3


# ----------------------------------------------------------------------------- issue 22
def test_progress_is_saved_by_time_too_so_a_kill_loses_little(
    tiny: MusicGenAdapter, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With FLUSH_SECONDS elapsed, every batch is a shard even below shard_size; a crash after
    two batches keeps them; the resumed result is the uninterrupted one."""
    import musicrfm.capture.runner as runner

    reference = extract_features(tiny, dataset, use_cache=False, progress=False)
    monkeypatch.setattr(runner, "FLUSH_SECONDS", 0.0)
    original = tiny.encode_audio
    n = {"calls": 0}

    def killed(waves):  # noqa: ANN001, ANN202
        n["calls"] += 1
        if n["calls"] == 3:
            raise SystemExit("killed")  # no flush can run after a SIGKILL; this one bypasses it
        return original(waves)

    monkeypatch.setattr(tiny, "encode_audio", killed)
    monkeypatch.setattr(runner._ShardBuffer, "flush", _flush_unless_exiting(runner))
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit):
        extract_features(tiny, dataset, cache_dir=cache, batch_size=2, progress=False)
    (entry,) = cache.iterdir()
    state = json.loads((entry / "manifest.json").read_text())
    assert [len(s["indices"]) for s in state["shards"]] == [1, 2]  # shard_size 256 not reached
    monkeypatch.setattr(tiny, "encode_audio", original)
    resumed = extract_features(tiny, dataset, cache_dir=cache, batch_size=2, progress=False)
    torch.testing.assert_close(resumed.features, reference.features, atol=ATOL, rtol=1e-4)
    assert resumed.rows.equals(reference.rows)


def _flush_unless_exiting(runner):  # noqa: ANN001, ANN202
    """`_ShardBuffer.flush` that does nothing while a SystemExit unwinds (as after SIGKILL)."""
    import sys

    real = runner._ShardBuffer.flush

    def flush(self, store):  # noqa: ANN001, ANN202
        if isinstance(sys.exc_info()[1], SystemExit):
            return None
        return real(self, store)

    return flush


def test_a_model_that_fails_on_every_clip_stops_at_once_and_records_nothing(
    tiny: MusicGenAdapter, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. --dtype float16 on a CPU: one error after the first batch, not a run that skips
    every clip and writes an empty set (which `train` then crashed on)."""
    import musicrfm.capture.runner as runner

    monkeypatch.setattr(runner, "FAIL_FAST", 2)
    calls = []

    def broken(waves):  # noqa: ANN001, ANN202
        calls.append(len(waves))
        raise RuntimeError("\"slow_conv2d_cpu\" not implemented for 'Half'")

    monkeypatch.setattr(tiny, "encode_audio", broken)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="failed on the first 3 clips and worked on none.*Half"):
        extract_features(tiny, dataset, cache_dir=cache, batch_size=4, progress=False)
    assert calls == [3, 1, 1, 1]  # the first batch, whole then clip by clip; no second batch
    (entry,) = cache.iterdir()
    state = json.loads((entry / "manifest.json").read_text())
    assert not any("model failed" in s["error"] for s in state["skipped"])
    assert not state["complete"]


def test_the_cli_refuses_to_write_an_empty_feature_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.wav").write_bytes(b"nope")
    pd.DataFrame({"path": ["bad.wav"], "label": ["C"]}).to_csv(tmp_path / "manifest.csv")
    argv = ["extract", "--data", str(tmp_path), "--model", "random:tiny", "--no-cache"]
    assert main([*argv, "--out", str(tmp_path / "f"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "all 1 were skipped" in err[0] and "nothing was written" in err[0]
    assert not (tmp_path / "f").exists()


def test_two_writers_of_one_cache_entry_lose_nothing(
    tiny: MusicGenAdapter, dataset: Path, tmp_path: Path
) -> None:
    """Shards have unique names and each writer takes in the other's before writing."""
    from musicrfm.capture.cache import FeatureCache

    key = {"k": 1}
    a = FeatureCache.open(tmp_path, key, num_rows=4, num_layers=1, hidden_size=2)
    b = FeatureCache.open(tmp_path, key, num_rows=4, num_layers=1, hidden_size=2)
    a.add_shard([0, 1], torch.ones(1, 2, 2))
    b.add_shard([2, 3], torch.zeros(1, 2, 2))  # b never saw a's shard
    c = FeatureCache.open(tmp_path, key, num_rows=4, num_layers=1, hidden_size=2)
    assert c.done_indices() == {0, 1, 2, 3}
    assert sorted(int(i) for s in c.iter_shards() for i in s["indices"]) == [0, 1, 2, 3]
    assert not [p for p in a.folder.iterdir() if p.name.startswith(".")]


def test_a_damaged_cache_manifest_names_the_folder(tmp_path: Path) -> None:
    from musicrfm.capture.cache import FeatureCache

    a = FeatureCache.open(tmp_path, {"k": 1}, num_rows=1, num_layers=1, hidden_size=1)
    (a.folder / "manifest.json").write_text('{"format": 1}')
    with pytest.raises(DatasetError, match="incomplete.*delete"):
        FeatureCache.open(tmp_path, {"k": 1}, num_rows=1, num_layers=1, hidden_size=1)
