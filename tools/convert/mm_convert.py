#!/usr/bin/python3
"""The converter behind mm_convert (tools/mm_convert.c runs it; see man/mm_convert.1 and
docs/model-format.md, "Bringing a checkpoint in").

A mapping file (JSON) says how a checkpoint's tensors become libmm's:

    {"description": "...",
     "config": {...},                      config fields this layout implies (conventions)
     "rules": [
       {"source": "blocks.{i}.attn.proj.{w}", "target": "scene.blocks.{i}.attn.proj.{w}"},
       {"sources": ["...q.weight", "...k.weight", "...v.weight"], "target": "...qkv.weight",
        "concat": 0},
       {"source": "...", "targets": ["a", "b"], "split": 0},
       {"source": "...", "target": "...", "transpose": [1, 0], "reshape": [64, 4, 2, 2],
        "slice": [0, 0, 5]}
     ],
     "drop": ["pos_embed", "ema.{x:path}"]}

Patterns: `{name}` matches one dot-free name component, `{name:path}` any non-empty text; a
placeholder used twice must match the same text; the first source pattern of a rule is matched
against every checkpoint tensor, its bindings fill the others and the targets. Operations apply
in the order slice, concat / split, transpose, reshape. Several mappings are applied together.
The config is the mappings' fields, then --vae-config (as "vae"), --config, --set, deep-merged
in that order; libmm (through the C front's --list-tensors) validates it and says which tensors
it implies. Every unused source tensor that no drop pattern covers, every implied tensor no rule
makes, every tensor made that the config does not imply, and every shape mismatch is reported,
and then nothing is written (exit status 1).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ckpt_io import ConvertError, load_inputs, write_model  # noqa: E402

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAPPINGS = os.path.join(HERE, "mappings")
_PH = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


def compile_pattern(pat):
    out, seen, pos = [], set(), 0
    for m in _PH.finditer(pat):
        out.append(re.escape(pat[pos:m.start()]))
        name = m.group(1)
        if name in seen:
            out.append(f"(?P={name})")
        else:
            seen.add(name)
            out.append(f"(?P<{name}>.+)" if m.group(2) else f"(?P<{name}>[^.]+)")
        pos = m.end()
    out.append(re.escape(pat[pos:]))
    return re.compile("".join(out))


def fill(pat, binds, where):
    def sub(m):
        if m.group(1) not in binds:
            raise ConvertError(f"{where}: placeholder {{{m.group(1)}}} of '{pat}' is not bound by "
                               "the rule's first source pattern")
        return binds[m.group(1)]
    return _PH.sub(sub, pat)


def load_mapping(spec):
    path = spec if os.path.exists(spec) else os.path.join(MAPPINGS, spec + ".json")
    if not os.path.exists(path):
        names = sorted(f[:-5] for f in os.listdir(MAPPINGS) if f.endswith(".json"))
        raise ConvertError(f"mapping '{spec}': no such file, nor a shipped mapping ({', '.join(names)})")
    try:
        with open(path) as f:
            mp = json.load(f)
    except ValueError as e:
        raise ConvertError(f"{path}: invalid JSON: {e}")
    unknown = set(mp) - {"description", "config", "rules", "drop"}
    if unknown:
        raise ConvertError(f"{path}: unknown keys {sorted(unknown)}")
    for i, r in enumerate(mp.get("rules", [])):
        where = f"{path}: rule {i}"
        bad = set(r) - {"source", "sources", "target", "targets", "concat", "split", "sizes",
                        "transpose", "reshape", "slice", "comment"}
        if bad:
            raise ConvertError(f"{where}: unknown keys {sorted(bad)}")
        if ("source" in r) == ("sources" in r) or ("target" in r) == ("targets" in r):
            raise ConvertError(f"{where}: needs exactly one of source/sources and of target/targets")
        ns = len(r["sources"]) if "sources" in r else 1
        nt = len(r["targets"]) if "targets" in r else 1
        if ns > 1 and "concat" not in r:
            raise ConvertError(f"{where}: several sources need \"concat\": DIM")
        if nt > 1 and "split" not in r:
            raise ConvertError(f"{where}: several targets need \"split\": DIM")
        if ns > 1 and nt > 1:
            raise ConvertError(f"{where}: concat and split in one rule are not supported")
        r["_where"] = where
    mp["_path"] = path
    return mp


def apply_rule(rule, ts):
    where = rule["_where"]
    try:
        if "slice" in rule:
            d, a, b = rule["slice"]  # [dim, start, stop); a negative stop counts from the end
            ts = [t.narrow(d, a, (b if b >= 0 else t.shape[d] + b) - a) for t in ts]
        if "concat" in rule:
            ts = [torch.cat(ts, dim=rule["concat"])]
        if "split" in rule:
            n = len(rule["targets"])
            t = ts[0]
            sizes = rule.get("sizes") or [t.shape[rule["split"]] // n] * n
            if sum(sizes) != t.shape[rule["split"]]:
                raise ConvertError(f"{where}: cannot split dim {rule['split']} of {list(t.shape)} "
                                   f"into {sizes}")
            ts = list(torch.split(t, sizes, dim=rule["split"]))
        if "transpose" in rule:
            ts = [t.permute(*rule["transpose"]) for t in ts]
        if "reshape" in rule:
            ts = [t.reshape(*rule["reshape"]) for t in ts]
    except (RuntimeError, IndexError, ValueError) as e:
        raise ConvertError(f"{where}: {e}")
    return [t.contiguous() for t in ts]


def deep_merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = v
    return dst


def set_field(cfg, kv):
    if "=" not in kv:
        raise ConvertError(f"--set {kv}: expected KEY=JSON")
    key, val = kv.split("=", 1)
    try:
        v = json.loads(val)
    except ValueError:
        v = val  # a bare word is a string
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConvertError(f"--set {kv}: '{p}' is not an object")
    if v is None:
        node.pop(parts[-1], None)  # null removes the field (its default applies)
    else:
        node[parts[-1]] = v


def implied_tensors(cfg):
    """Names and shapes libmm implies for cfg, from the C front (libmm's one list)."""
    front = os.environ.get("MM_CONVERT_FRONT")
    if not front:
        raise ConvertError("run through mm_convert (MM_CONVERT_FRONT is not set)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
        path = f.name
    try:
        r = subprocess.run([front, "--list-tensors", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        msg = r.stderr.strip().replace(path + ": ", "")
        raise ConvertError(f"the config is refused by libmm: {msg.split(': ', 1)[-1]}")
    out = {}
    for line in r.stdout.splitlines():
        name, shape = line.split("\t")
        out[name] = tuple(int(x) for x in shape.split(",")) if shape else ()
    return out


def convert(a):
    maps = [load_mapping(m) for m in a.mapping]
    cfg = {"format": "metaearth-mm", "format_version": 1}
    for mp in maps:
        deep_merge(cfg, json.loads(json.dumps(mp.get("config", {}))))
    if a.vae_config:
        with open(a.vae_config) as f:
            deep_merge(cfg.setdefault("vae", {}), json.load(f))
    if a.config:
        with open(a.config) as f:
            deep_merge(cfg, json.load(f))
    for kv in a.set or []:
        set_field(cfg, kv)

    implied = implied_tensors(cfg)  # a config libmm refuses stops here, before any reading
    tensors = load_inputs(a.inputs, a.state_key)

    # drops first: a dropped tensor is offered to no rule, so that a catch-all rule
    # ("blocks.{i}.{rest:path}") cannot turn it into a target the model does not have
    drops = [compile_pattern(p) for mp in maps for p in mp.get("drop", [])]
    drops += [compile_pattern(p) for p in a.drop or []]
    dropped = sorted(n for n in tensors if any(d.fullmatch(n) for d in drops))
    kept = sorted(set(tensors) - set(dropped))
    made, used = {}, set()
    problems = []
    for mp in maps:
        for rule in mp.get("rules", []):
            srcs = rule["sources"] if "sources" in rule else [rule["source"]]
            tgts = rule["targets"] if "targets" in rule else [rule["target"]]
            rx = compile_pattern(srcs[0])
            for name in kept:
                m = rx.fullmatch(name)
                if not m:
                    continue
                binds = m.groupdict()
                names = [fill(p, binds, rule["_where"]) for p in srcs]
                absent = [n for n in names if n not in kept]
                if absent:
                    problems.append(f"{rule['_where']}: '{name}' matched, but {absent} are not in "
                                    "the checkpoint (or dropped)")
                    continue
                outs = apply_rule(rule, [tensors[n] for n in names])
                for tp, t in zip(tgts, outs):
                    tn = fill(tp, binds, rule["_where"])
                    if tn in made:
                        problems.append(f"'{tn}' is made twice: from {made[tn][1]} and from {names}")
                    made[tn] = (t, names)
                used.update(names)
    unmapped = sorted(n for n in kept if n not in used)
    missing = sorted(n for n in implied if n not in made)
    extra = sorted(n for n in made if n not in implied)
    bad = sorted(n for n in made if n in implied and tuple(made[n][0].shape) != implied[n])
    for n in unmapped:
        problems.append(f"unmapped source tensor '{n}' {list(tensors[n].shape)}: no rule uses it "
                        "and it is not dropped (map it, or drop it in the mapping or with --drop)")
    for n in missing:
        problems.append(f"missing target tensor '{n}' {list(implied[n])}: the config implies it, "
                        "no rule makes it")
    for n in extra:
        problems.append(f"target tensor '{n}' made from {made[n][1]} is not part of the model the "
                        "config describes")
    for n in bad:
        problems.append(f"target tensor '{n}' made from {made[n][1]} has shape "
                        f"{list(made[n][0].shape)}, the config implies {list(implied[n])}")
    if problems:
        for p in problems:
            print(f"mm_convert: {p}", file=sys.stderr)
        raise ConvertError(f"{len(problems)} problem(s); nothing written")
    for n in made:
        if not torch.is_floating_point(made[n][0]):
            raise ConvertError(f"target tensor '{n}' is not floating point ({made[n][0].dtype})")
        if not torch.isfinite(made[n][0]).all():
            raise ConvertError(f"target tensor '{n}' holds non-finite values")
    if not a.quiet:
        print(f"mm_convert: {len(tensors)} source tensors: {len(used)} mapped, {len(dropped)} "
              f"dropped; {len(made)} target tensors, as the config implies")
        for n in dropped:
            print(f"  dropped: {n} {list(tensors[n].shape)}")
    if a.dry_run:
        return
    write_model(a.output, {n: t for n, (t, _) in made.items()},
                json.dumps(cfg, separators=(",", ":")), a.dtype)
    if not a.quiet:
        print(f"mm_convert: wrote {a.output} ({a.dtype})")


def main():
    ap = argparse.ArgumentParser(prog="mm_convert", add_help=False)
    ap.add_argument("-m", "--mapping", action="append", default=[])
    ap.add_argument("-c", "--config")
    ap.add_argument("--vae-config")
    ap.add_argument("--set", action="append")
    ap.add_argument("--drop", action="append")
    ap.add_argument("--state-key")
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("-o", "--output")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("--inspect", action="store_true")
    ap.add_argument("--list-mappings", action="store_true")
    ap.add_argument("inputs", nargs="*")
    a = ap.parse_args()
    try:
        if a.list_mappings:
            for f in sorted(os.listdir(MAPPINGS)):
                if f.endswith(".json"):
                    mp = load_mapping(os.path.join(MAPPINGS, f))
                    print(f"{f[:-5]:16s} {mp.get('description', '')}")
            return 0
        if a.inspect:
            for n, t in sorted(load_inputs(a.inputs, a.state_key).items()):
                print(f"{n}\t{list(t.shape)}\t{str(t.dtype).replace('torch.', '')}")
            return 0
        if not a.mapping:
            raise ConvertError("no mapping given (-m NAME or FILE; --list-mappings)")
        convert(a)
    except ConvertError as e:
        print(f"mm_convert: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"mm_convert: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
