"""The mini model's parts: spectral codec (EnCodec interface, registration, pitch kept), the
delay-pattern layout of training, and an offline save/load/generate round trip of a tiny model.
The full training recipe is not run here (see `musicrfm mini train`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicrfm.models.codecs.spectral import MODEL_TYPE, SpectralCodecConfig, SpectralCodecModel
from musicrfm.theory import PITCH_CLASSES

SR = 16_000


def tone(midi: int, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """A harmonic tone with a decaying envelope (a stand-in for a rendered note)."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum((0.6**h) * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(5))
    return (0.8 * y * np.exp(-1.5 * t) / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared, loaded CPU more threads make these small ops far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted_codec() -> SpectralCodecModel:
    torch.manual_seed(0)
    codec = SpectralCodecModel(SpectralCodecConfig(codebook_size=32, griffin_lim_iters=16))
    audio = torch.from_numpy(np.stack([tone(m) for m in range(55, 79)]))
    codec.fit_codebooks(codec.log_mel(audio).reshape(-1, 128), iters=8, seed=0)
    return codec


def test_codec_is_registered_with_auto_classes() -> None:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model(MODEL_TYPE, codebook_size=16)
    assert isinstance(config, SpectralCodecConfig)
    model = AutoModel.from_config(config)
    assert isinstance(model, SpectralCodecModel)
    assert model.codebooks.shape == (4, 16, 128)


def test_config_exposes_what_musicgen_and_encodec_users_read() -> None:
    cfg = SpectralCodecConfig()
    assert cfg.sampling_rate == 16_000
    assert cfg.frame_rate == 50
    assert cfg.num_quantizers == cfg.num_codebooks == 4
    assert cfg.codebook_size == 512
    assert cfg.audio_channels == 1
    assert cfg.chunk_length is None
    assert len(cfg.target_bandwidths) == 4


def test_encode_decode_shapes_follow_encodec(fitted_codec: SpectralCodecModel) -> None:
    audio = torch.from_numpy(np.stack([tone(60, 0.7), tone(67, 0.7)]))[:, None]  # (2, 1, 11200)
    enc = fitted_codec.encode(audio)
    assert enc.audio_codes.shape == (1, 2, 4, 35)  # ceil(11200 / 320) frames
    assert enc.audio_codes.dtype == torch.long
    assert enc.audio_scales == [None]
    assert int(enc.audio_codes.max()) < 32
    dec = fitted_codec.decode(enc.audio_codes, enc.audio_scales)
    assert dec.audio_values.shape == (2, 1, 35 * 320)
    assert torch.isfinite(dec.audio_values).all()
    trimmed = fitted_codec.decode(enc.audio_codes, [None], padding_mask=torch.ones(2, 11_000))
    assert trimmed.audio_values.shape[-1] == 11_000
    fewer = fitted_codec.encode(audio, bandwidth=fitted_codec.config.target_bandwidths[1])
    assert fewer.audio_codes.shape[2] == 2
    tup = fitted_codec(audio, return_dict=False)
    assert tup[0].shape == enc.audio_codes.shape and tup[1].shape == dec.audio_values.shape


def test_codec_keeps_the_pitch_class_of_tones(fitted_codec: SpectralCodecModel) -> None:
    from musicrfm.mini.gates import detect_pitch

    for midi in (57, 64, 70):  # A3, E4, A#4
        audio = torch.from_numpy(tone(midi))[None, None]
        recon = fitted_codec(audio).audio_values[0, 0].numpy()
        assert detect_pitch(tone(midi), SR)[0] == detect_pitch(recon, SR)[0]
        names = PITCH_CLASSES
        assert detect_pitch(recon, SR)[0] == names[midi % 12]


def test_delay_layout_matches_transformers_delay_pattern() -> None:
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    from musicrfm.mini.model import delayed_sequences

    k, t, pad = 4, 6, 32
    decoder = MusicgenForCausalLM(
        MusicgenDecoderConfig(
            vocab_size=pad,
            hidden_size=16,
            num_hidden_layers=1,
            ffn_dim=16,
            num_attention_heads=2,
            pad_token_id=pad,
            bos_token_id=pad,
        )
    )
    codes = torch.randint(0, pad, (1, k, t))
    ours = delayed_sequences(codes, pad)
    prefix = torch.cat([torch.full((1, k, 1), pad), codes], dim=-1).reshape(k, t + 1)
    _, pattern = decoder.build_delay_pattern_mask(prefix, pad_token_id=pad, max_length=t + k)
    assert torch.equal(ours.reshape(k, t + k), pattern)


def test_tiny_mini_model_saves_loads_offline_and_generates(tmp_path, fitted_codec) -> None:
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    from musicrfm.mini.config import TrainConfig
    from musicrfm.mini.export import save_model
    from musicrfm.mini.model import batch_loss, build_model
    from musicrfm.mini.text import build_tokenizer

    cfg = TrainConfig(hidden_size=32, num_layers=2, num_heads=2, ffn_dim=64, seconds=0.5)
    tokenizer = build_tokenizer()
    model = build_model(cfg, fitted_codec, tokenizer)
    enc = tokenizer(["violin, low register", "flute"], padding=True, return_tensors="pt")
    mask = enc["attention_mask"].clone()
    mask[1] = 0  # a caption-dropped (unconditional) row must still give a finite loss
    codes = torch.randint(0, 32, (2, 4, 25))
    loss = batch_loss(model, enc["input_ids"], mask, codes, pad=32)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0

    folder = tmp_path / "mini"
    save_model(model, tokenizer, folder, {"note": "test"})
    names = {p.name for p in folder.iterdir()}
    assert "model.safetensors" in names and "config.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)

    loaded = MusicgenForConditionalGeneration.from_pretrained(folder)
    assert isinstance(loaded.audio_encoder, SpectralCodecModel)
    assert torch.equal(loaded.audio_encoder.codebooks, fitted_codec.codebooks)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    audio = loaded.generate(**tok(["violin"], return_tensors="pt"), max_new_tokens=13)
    assert audio.shape == (1, 1, (13 - 3) * 320)  # K - 1 steps are delay padding
    assert torch.isfinite(audio).all()


def test_recipe_model_cannot_see_future_codes_or_padding(fitted_codec) -> None:
    """The model the recipe trains is causal and ignores caption padding, in train and eval mode.

    Composing MusicgenForConditionalGeneration from parts used to leave the decoder without an
    attention implementation; transformers 5 then ignored the causal mask, so training saw the
    codes it had to predict (loss fell to 0.2 while generation stayed poor)."""
    from musicrfm.mini.config import TrainConfig
    from musicrfm.mini.model import build_model, delayed_sequences
    from musicrfm.mini.text import build_tokenizer

    cfg = TrainConfig(hidden_size=32, num_layers=2, num_heads=2, ffn_dim=64, seconds=0.5)
    tokenizer = build_tokenizer()
    model = build_model(cfg, fitted_codec, tokenizer)
    seq = delayed_sequences(torch.randint(0, 32, (1, 4, 25)), pad=32)[..., :-1]
    later = seq.clone()
    later[..., 15:] = torch.randint(0, 32, later[..., 15:].shape)
    short = tokenizer(["flute"], return_tensors="pt")
    padded = tokenizer(["flute", "a much longer caption"], padding=True, return_tensors="pt")
    for mode in ("train", "eval"):
        getattr(model, mode)()
        outs = []
        for s, enc in ((seq, short), (later, short), (seq, padded)):
            torch.manual_seed(0)  # same dropout masks
            ids = {k: v[:1] for k, v in enc.items()}
            outs.append(model(**ids, decoder_input_ids=s.reshape(4, -1)).logits[:, :15])
        assert torch.allclose(outs[0], outs[1], atol=1e-6), f"{mode}: future codes leak"
        if mode == "eval":  # padding changes the dropout draw's shapes in train mode
            assert torch.allclose(outs[0], outs[2], atol=1e-5), "caption padding leaks"


def test_generation_gate_counts_pitch_spread() -> None:
    from musicrfm.mini.gates import generation_gate

    clips = np.stack([tone(m) for m in (60, 62, 64, 65, 67, 69, 71, 72)])
    clips = np.concatenate([clips, np.zeros((1, clips.shape[1]), np.float32)])
    result = generation_gate(clips, SR, confidence_floor=0.0, instruments=["x"] * 9)
    assert result["n"] == 9
    assert result["pitched_fraction"] == pytest.approx(8 / 9)
    assert result["max_pitch_class_share"] == pytest.approx(2 / 9)  # C twice (60, 72)
    assert result["spread_passed"] and result["pitched_passed"]


@pytest.mark.parametrize(("right", "passed"), [(20, True), (6, False)])
def test_instrument_gate_needs_well_above_chance(right: int, passed: bool) -> None:
    """4 instruments (chance 0.25), 24 clips: 20 right passes; 6 right (= chance) fails."""
    from musicrfm.mini.gates import generation_gate

    names = ["flute", "violin", "trumpet", "choir"] * 6

    class Fixed:  # a classifier whose first `right` answers are the prompted instrument
        def predict(self, audios, sr):  # InstrumentClassifier's signature
            assert len(audios) == len(names) and sr == SR
            return [n if i < right else "organ" for i, n in enumerate(names)]

    clips = np.stack([tone(60 + i % 12, seconds=0.5) for i in range(24)])
    result = generation_gate(clips, SR, 0.0, names, classifier=Fixed())
    assert result["instrument_accuracy"] == pytest.approx(right / 24)
    assert result["instrument_chance"] == 0.25
    assert result["instrument_passed"] is passed


def test_train_config_round_trips_through_its_record() -> None:
    """The recorded config (JSON lists) comes back as the same config; records written before
    ``programs`` existed mean the old recipe's every-instrument grid."""
    import json
    from dataclasses import asdict

    from musicrfm.mini.codes import _grid
    from musicrfm.mini.config import TrainConfig
    from musicrfm.synth.notes import INSTRUMENTS, TRAIN_PROGRAMS

    one_rhythm = {"rhythms": ((4, 0.9),), "melody_clips": False}
    cfg = TrainConfig(steps=10, programs=(0, 40), velocities=(90,), **one_rhythm)
    back = TrainConfig.from_record(json.loads(json.dumps(asdict(cfg))))
    assert back == cfg
    assert TrainConfig().programs == TRAIN_PROGRAMS
    old = {k: v for k, v in json.loads(json.dumps(asdict(cfg))).items() if k != "programs"}
    assert TrainConfig.from_record(old).programs == tuple(INSTRUMENTS)
    # the bundled model's recipe is the default; records from before rhythms and melodies keep
    # describing the one-rhythm, one-note recipe they were made by
    assert len(TrainConfig().rhythms) == 4 and TrainConfig().melody_clips is True
    older = {k: v for k, v in old.items() if k not in one_rhythm}
    assert TrainConfig.from_record(older).rhythms == ((4, 0.9),)
    assert TrainConfig.from_record(older).melody_clips is False
    train, hold = _grid(cfg)
    assert {c.program for c in train + hold} == {0, 40}
    one_note = [c for c in train if c.second_note is None]
    assert len(one_note) + len(hold) == 2 * (cfg.high_note - cfg.low_note + 1)
    assert len(train) == len(one_note)  # no two-note copies unless asked for
    assert not {(c.program, c.midi_note) for c in train} & {(c.program, c.midi_note) for c in hold}


def test_rhythm_variants_render_their_own_onsets_and_keep_the_split() -> None:
    """--rhythms renders every (program, note, velocity) once per rhythm; a rhythm changes when
    the note sounds, not which notes are held out; the record brings it back."""
    import json
    from dataclasses import asdict

    from musicrfm.commands.mini import parse_rhythms
    from musicrfm.errors import ConfigError
    from musicrfm.mini.codes import _grid
    from musicrfm.mini.config import TrainConfig
    from musicrfm.synth.notes import render_clips

    rhythms = parse_rhythms("1:0.95,4:0.5")
    assert rhythms == ((1, 0.95), (4, 0.5))
    flute = {"programs": (73,), "velocities": (90,), "melody_clips": False}  # flute: sustains
    cfg = TrainConfig(rhythms=rhythms, **flute)
    assert TrainConfig.from_record(json.loads(json.dumps(asdict(cfg)))) == cfg
    train, hold = _grid(cfg)
    one = _grid(TrainConfig(rhythms=((4, 0.9),), **flute))
    assert len(train) == 2 * len(one[0]) and len(hold) == 2 * len(one[1])
    assert {(c.program, c.midi_note) for c in train} == {(c.program, c.midi_note) for c in one[0]}
    held, staccato = render_clips([train[0], train[1]], seconds=2.0)
    # second half of each beat: the held note keeps sounding, the 50%-gated one has been released
    q = len(held) // 8
    gaps = [slice((2 * k + 1) * q, (2 * k + 2) * q) for k in range(4)]
    assert all(np.abs(held[s]).mean() > 2 * np.abs(staccato[s]).mean() for s in gaps)
    for bad in ("4", "0:0.5", "4:1.5", "x:y"):
        with pytest.raises(ConfigError, match="--rhythms"):
            parse_rhythms(bad)


def test_model_card_states_the_recipe_and_whether_the_decoder_generalises(tmp_path) -> None:
    """The card's reproduce command carries the rhythms, and its words on memorising follow the
    held-out loss (lowest early then rising, or still near its best)."""
    from dataclasses import asdict

    from musicrfm.mini.card import write_model_card
    from musicrfm.mini.config import TrainConfig

    def card(rhythms, val_losses, codec="spectral") -> str:
        cfg = TrainConfig(steps=3, rhythms=rhythms, melody_clips=len(rhythms) > 1, codec=codec)
        hist = [{"step": i, "loss": 1.0, "val_loss": v} for i, v in enumerate(val_losses)]
        info = {"train_config": asdict(cfg), "history": hist}
        return write_model_card(tmp_path, info, None).read_text()

    varied = card(((4, 0.9), (8, 0.5)), [5.0, 3.0, 3.1], codec="harmonic")
    assert "--rhythms 4:0.9,8:0.5 --melodies --codec harmonic`" in varied
    assert "model_type `musicrfm_harmonic_codec`" in varied
    assert "in 2 rhythms (4 strikes held 90%, 8 strikes held 50%)" in varied
    assert "generalises to (program, note) pairs" in varied and "memorises" not in varied
    replaying = card(((4, 0.9),), [6.0, 5.0, 9.0])
    assert "--rhythms 4:0.9 --no-melodies --codec spectral`" in replaying
    assert "model_type `musicrfm_spectral_codec`" in replaying
    assert "4 times (each strike held 90%" in replaying
    assert "memorises its training clips" in replaying and "lowest (5.000)" in replaying


def test_two_note_copies_change_pitch_half_way_and_say_so() -> None:
    """Every training clip gets a two-note copy: same instrument, another pitch class for the
    later strikes, captioned "..., two notes"; held-out clips and old records stay one-note."""
    import json
    from dataclasses import asdict

    from musicrfm.evaluation.detectors import detect_note
    from musicrfm.mini.codes import _grid
    from musicrfm.mini.config import TrainConfig
    from musicrfm.synth.notes import caption_for, render_clips

    assert TrainConfig().two_note_clips is False  # the bundled model's recipe
    cfg = TrainConfig(  # flute: steady pitch
        programs=(73,),
        velocities=(90,),
        two_note_clips=True,
        rhythms=((4, 0.9),),
        melody_clips=False,
    )
    train, hold = _grid(cfg)
    one, two = train[: len(train) // 2], train[len(train) // 2 :]
    assert [c.second_note for c in one] == [None] * len(one)
    assert [(c.program, c.midi_note) for c in two] == [(c.program, c.midi_note) for c in one]
    assert all(c.second_note % 12 != c.midi_note % 12 for c in two)
    assert all(cfg.low_note <= c.second_note <= cfg.high_note for c in two)
    assert all(abs(c.second_note - c.midi_note) <= 12 for c in two)
    assert all(c.second_note is None for c in hold)
    # the held-out (program, note) pairs are not heard as second notes either
    assert not {(c.program, c.second_note) for c in two} & {(c.program, c.midi_note) for c in hold}
    assert two[0].caption == caption_for("flute", two[0].register, two_notes=True)
    assert two[0].caption.endswith(", two notes") and not one[0].caption.endswith("notes")
    audio = render_clips([two[5]], seconds=4.0)[0]
    half = len(audio) // 2
    first, second = detect_note(audio[:half], 16_000), detect_note(audio[half:], 16_000)
    names = PITCH_CLASSES
    assert (first.label, second.label) == (
        names[two[5].midi_note % 12],
        names[two[5].second_note % 12],
    )
    # a record written before two-note copies existed describes a one-note model
    record = json.loads(json.dumps(asdict(cfg)))
    assert TrainConfig.from_record(record) == cfg
    del record["two_note_clips"]
    assert TrainConfig.from_record(record).two_note_clips is False
    assert len(_grid(TrainConfig.from_record(record))[0]) == len(one)


def test_melody_copies_play_a_note_per_strike_and_say_so() -> None:
    """With melody_clips every one-note training clip gets a copy whose strikes each play their
    own note (no pitch class twice in a row, never a held-out pair), captioned "..., melody"."""
    from musicrfm.evaluation.detectors import detect_note
    from musicrfm.mini.codes import _grid
    from musicrfm.mini.config import TrainConfig
    from musicrfm.synth.notes import caption_for, render_clips

    assert TrainConfig().melody_clips is True  # the bundled model's recipe
    cfg = TrainConfig(programs=(73,), velocities=(90,), melody_clips=True, rhythms=((4, 0.9),))
    train, hold = _grid(cfg)
    one, mel = train[: len(train) // 2], train[len(train) // 2 :]
    assert [c.melody for c in one] == [None] * len(one)
    assert [c.melody[0] for c in mel] == [c.midi_note for c in one]
    assert all(len(c.melody) == c.repeats == 4 for c in mel)
    assert all(a % 12 != b % 12 for c in mel for a, b in zip(c.melody, c.melody[1:]))
    assert all(cfg.low_note <= n <= cfg.high_note for c in mel for n in c.melody)
    assert not {(c.program, n) for c in mel for n in c.melody} & {
        (c.program, c.midi_note) for c in hold
    }
    assert len({c.melody[1:] for c in mel}) > len(mel) // 2  # random, not one fixed tune
    assert mel[0].caption == caption_for("flute", mel[0].register, melody=True)
    assert mel[0].caption.endswith(", melody") and all(c.melody is None for c in hold)
    clip = mel[7]
    audio = render_clips([clip], seconds=4.0)[0]
    names = PITCH_CLASSES
    heard = [detect_note(audio[i * 16_000 : (i + 1) * 16_000], 16_000).label for i in range(4)]
    assert heard == [names[n % 12] for n in clip.melody]


def test_bundled_model_loads_with_stock_transformers_and_keeps_pitch() -> None:
    """models/musicgen-mini: stock from_pretrained (after the codec registers), a clip from an
    instrument prompt, and its codec keeps the pitch class of a rendered note."""
    from pathlib import Path

    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    import musicrfm  # noqa: F401  (registers the spectral codec)
    from musicrfm.evaluation.detectors import detect_note
    from musicrfm.synth.notes import NoteClip, render_note

    folder = Path(__file__).resolve().parents[2] / "models" / "musicgen-mini"
    model = MusicgenForConditionalGeneration.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    with torch.no_grad():
        audio = model.generate(**tok(["flute, middle register"], return_tensors="pt"),
                               max_new_tokens=53)  # fmt: skip
    assert audio.shape == (1, 1, 50 * 320) and torch.isfinite(audio).all()
    assert float(audio.abs().max()) > 1e-3  # not silence
    for midi, name in ((60, "C"), (66, "F#"), (71, "B")):  # on a flute
        note = render_note(NoteClip(73, midi), seconds=2.0)
        with torch.no_grad():
            recon = model.audio_encoder(torch.from_numpy(note)[None, None]).audio_values
        assert detect_note(recon[0, 0].numpy(), SR).label == name


def test_strike_recipe_holds_out_every_class_and_never_names_it() -> None:
    """--data strikes trains on notes, intervals and triads at many tempi; every (concept,
    class) keeps held-out clips, and no caption names a note, chord, interval or tempo."""
    from musicrfm.errors import ConfigError
    from musicrfm.mini.codes import _fit_subset, recipe_clips
    from musicrfm.mini.config import TrainConfig
    from musicrfm.mini.train import _captions
    from musicrfm.synth.strikes import StrikeClip

    cfg = TrainConfig(data="strikes", programs=(0, 40), codec_fit_clips=50)
    train, hold = recipe_clips(cfg)
    assert all(isinstance(c, StrikeClip) for c in train + hold)
    classes = {(c.concept, c.label) for c in train + hold}
    assert {(c.concept, c.label) for c in hold} == classes
    assert {c.concept for c in train} == {"notes", "intervals", "chords"}
    assert len({c.bpm for c in train}) == 13
    captions = _captions(train, np.random.default_rng(0), cfg)
    words = {"major", "minor", "augmented", "diminished", "bpm", "fifth", "chord", "interval"}
    assert not any(w in cap.lower() for cap in captions for w in words)
    assert {cap.split(",")[0] for cap in captions} == {"acoustic piano", "violin"}
    subset = _fit_subset(train, cfg)
    assert len(subset) == 50 and subset == sorted(subset, key=train.index)
    assert _fit_subset(train, cfg) == subset  # seeded
    with pytest.raises(ConfigError, match="unknown recipe data"):
        recipe_clips(TrainConfig(data="waltzes"))
