"""`musicrfm demo`: the whole method, end to end, offline, in a few minutes on a CPU.

Stages (each logged as ``stage i/7``; the long ones show a progress bar):

1. load the model (default: the bundled ``musicgen-mini``; any MusicGen hub id or folder works);
2. synthesise a small note set: tonal GM programs the mini model was trained on, middle
   registers, the same number of clips for each of the 12 pitch classes (cached in ``work``);
3. extract the decoder's per-layer features (mean pooling, empty prompt; cached in ``work``);
4. train note directions: 12 one-vs-rest RFM probes per layer + a multiclass probe (fast budget);
5. generate clips from instrument prompts, the same prompts and seeds for every condition
   (a paired design): unsteered; steered toward the target note at each η0; causal controls at
   equal norm, schedule and layer weights (random, sign-flipped, ...; see
   :mod:`musicrfm.experiments.controls`); and a crossfade from the target to a second note;
6. evaluate every clip with the independent chroma note detector (it never sees MusicGen), and
   the prompted instrument with the offline timbre classifier (prompt adherence); then, on the
   bundled testbed that plays a beat (``musicgen-mini-beat``), the second part (one chord
   quality with the same controls, :mod:`.part`), a four-chord progression judged bar by bar
   (:mod:`.progression`), two concepts at once, a note and a chord quality from one plan of
   two directions (:mod:`.pair`), and exact tempos: the testbed's bundled onset directions
   pulsed on the beats of 80 and 160 BPM, judged by the tempo detector (:mod:`.beat`);
7. write the report folder: ``index.html`` (audio players, figures, tables), ``results.csv``
   (one row per clip), ``summary.csv/.md`` (accuracy with bootstrap 95% CI and n per condition),
   ``controls.csv/.md`` (concept minus each control, with CIs), figures and the directions.

``run_demo(...)`` returns a :class:`DemoResult` (tables and paths); it logs and never prints.
"""

from musicrfm.experiments.demo.config import (
    CONTROL_LABELS,
    PROMPT_INSTRUMENTS,
    DemoConfig,
    DemoResult,
    default_work_dir,
)
from musicrfm.experiments.demo.run import run_demo

__all__ = [
    "CONTROL_LABELS",
    "PROMPT_INSTRUMENTS",
    "DemoConfig",
    "DemoResult",
    "default_work_dir",
    "run_demo",
]
