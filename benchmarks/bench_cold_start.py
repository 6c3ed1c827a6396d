"""Cold start of the default model: a fresh Python process imports vis_core, loads the
offline MobileNetV2 (weights from the hub cache or the offline package) and predicts once."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

import torch

_CHILD = """
import json, time
t0 = time.perf_counter()
import vis_core
t1 = time.perf_counter()
handle = vis_core.load_model(device={device!r})
t2 = time.perf_counter()
image = vis_core.sample_image("chelsea")
prediction = vis_core.predict(handle, image)
{sync}
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_model_s": t2 - t1, "first_predict_s": t3 - t2,
                  "top1": prediction.labels[0]}}))
"""


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    sync = "import torch; torch.cuda.synchronize()" if device.type == "cuda" else ""
    code = _CHILD.format(device=str(device), sync=sync)
    runs = []
    for _ in range(max(3, repeats // 10)):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    keys = ["import_s", "load_model_s", "first_predict_s"]
    medians = {key: round(statistics.median(run[key] for run in runs), 3) for key in keys}
    medians["total_s"] = round(sum(medians[key] for key in keys), 3)
    return {"runs": len(runs), "median": medians, "top1": runs[0]["top1"]}
