"""Suite-wide settings.

One torch thread: the test models are tiny, where thread start-up and spinning cost more than they
save, and on a busy 2-core machine two threads per process can slow a generation 100-fold.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
