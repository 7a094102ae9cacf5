#!/usr/bin/env python3
"""seeds.py - collect runs of one recipe with different seeds into a seeds file.

    models/seeds.py OUT NOTE COMMAND SEED=FILE...

Each FILE is a `tripletctl eval --json` result (its results.model figures)
or a `bench/train_cnn_torch.py --json` result (its test figures, and its
seconds per epoch). OUT gets {"note", "command", "runs": [{seed, recall_at_1,
recall_at_5, map_at_r}...], "mean"} as models/seeds.json has. Standard
library only; `make model-seeds` runs it.
"""
import json
import sys

KEYS = ("recall_at_1", "recall_at_5", "map_at_r")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    out, note, command = sys.argv[1:4]
    runs = []
    for arg in sys.argv[4:]:
        seed, path = arg.split("=", 1)
        with open(path) as f:
            j = json.load(f)
        r = j["results"]["model"] if "results" in j else j["test"]
        run = {"seed": int(seed)}
        run.update({k: r[k] for k in KEYS})
        if "seconds_per_epoch" in j:
            run["seconds_per_epoch"] = round(j["seconds_per_epoch"], 2)
        runs.append(run)
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in KEYS}
    with open(out, "w") as f:
        json.dump({"note": note, "command": command, "runs": runs, "mean": mean}, f, indent=1)
        f.write("\n")
    print("seeds.py: %s: Recall@1 %.4f, MAP@R %.4f (mean of %d)" % (out, mean["recall_at_1"], mean["map_at_r"],
                                                                   len(runs)))


if __name__ == "__main__":
    main()
