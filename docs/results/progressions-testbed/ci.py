import json, numpy as np
from musicrfm.steering.progressions import make_progression
d = json.load(open("/tmp/progmeasure/out/results.json"))
rng = np.random.default_rng(0)
for r in d["rows"]:
    prog = make_progression(chords=r["progression"], bpm=120, beats_per_bar=2)
    want = [b[0] for b in prog.chords.chord_at_bars()]
    det = np.array(r["detected"]).reshape(r["clips"], 4)
    q = np.array([[det[c, i].split(":")[-1] == want[i].quality for i in range(4)] for c in range(r["clips"])], float)
    ch = np.array([[det[c, i] == want[i].name for i in range(4)] for c in range(r["clips"])], float)
    def ci(x):
        boots = [x[rng.integers(0, len(x), len(x))].mean() for _ in range(2000)]
        return np.percentile(boots, [2.5, 97.5])
    lo, hi = ci(q); clo, chi = ci(ch)
    print(f"| {r['progression']} | {r['condition']} | {q.mean():.2f} [{lo:.2f}, {hi:.2f}] | {' '.join(f'{v:.2f}' for v in q.mean(0))} | {ch.mean():.2f} [{clo:.2f}, {chi:.2f}] |")
