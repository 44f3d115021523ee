#!/usr/bin/python3
"""Build the upstream patch series (make patchset).

Starts from the pristine kernel tree, applies the changes of
kernel/patchset/series.py one patch at a time in a scratch git
repository, and writes `git format-patch` output with a cover letter to
build/patchset/.  Checks that every hunk of kernel/patches/*.patch and
every new file is used exactly once, and that the result equals the
working tree build/linux.

    scripts/patchset.py [--out DIR]
"""
import argparse
import fnmatch
import glob
import os
import re
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD_DIR", os.path.join(TOP, "build"))
PRISTINE = os.path.join(BUILD, "linux-pristine")
TREE = os.path.join(BUILD, "linux")
sys.path.insert(0, os.path.join(TOP, "kernel", "patchset"))
import series as spec  # noqa: E402


def die(msg):
    sys.exit("patchset: error: " + msg)


def run(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, check=True, text=True, **kw)


class Hunk:
    def __init__(self, path, text, origin):
        self.path, self.text, self.origin, self.used = path, text, origin, False


def read_hunks():
    """Every hunk of the series in kernel/patches, per path, in order."""
    hunks = {}
    with open(os.path.join(TOP, "kernel", "patches", "series")) as f:
        names = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    for name in names:
        with open(os.path.join(TOP, "kernel", "patches", name)) as f:
            diff = f.read().split("\n---\n", 1)[1]
        path, cur = None, None
        for line in diff.splitlines(keepends=True):
            if line.startswith("--- "):
                continue
            if line.startswith("+++ "):
                path = line.split()[1][2:]
                if path in hunks:
                    die(f"{path} is changed by more than one patch in kernel/patches")
                hunks[path] = []
                continue
            if line.startswith("@@"):
                cur = Hunk(path, line, name)
                hunks[path].append(cur)
            elif cur is not None:
                cur.text += line
    return hunks


def apply_hunks(repo, path, chosen):
    diff = f"--- a/{path}\n+++ b/{path}\n" + "".join(h.text for h in chosen)
    run(["patch", "-p1", "--quiet", "--no-backup-if-mismatch", "--fuzz=0"],
        cwd=repo, input=diff)


def add_maintainers(repo, entries, identity):
    path = os.path.join(repo, "MAINTAINERS")
    with open(path) as f:
        lines = f.read().split("\n")
    header = spec.MAINTAINERS_SECTION
    if header not in lines:
        at = lines.index(spec.MAINTAINERS_BEFORE)
        lines[at:at] = [header, f"M:\t{identity}", "L:\tlinux-mm@kvack.org",
                        "S:\tMaintained", ""]
    start = lines.index(header)
    end = lines.index("", start)
    section = lines[start:end]
    files = sorted({l for l in section if l.startswith("F:\t")} |
                   {"F:\t" + e for e in entries})
    section = [l for l in section if not l.startswith("F:\t")] + files
    lines[start:end] = section
    with open(path, "w") as f:
        f.write("\n".join(lines))


def insert_after(repo, path, after, line):
    full = os.path.join(repo, path)
    with open(full) as f:
        lines = f.read().split("\n")
    if after not in lines:
        die(f"{path}: no line {after!r} to insert after")
    lines.insert(lines.index(after) + 1, line)
    with open(full, "w") as f:
        f.write("\n".join(lines))


def touched_paths(hunks):
    paths = set(hunks) | {"MAINTAINERS"}
    for patch in spec.SERIES:
        for item in patch["items"]:
            if item[0] == "insert":
                paths.add(item[1])
    return sorted(paths)


def new_files():
    """Our files that the kernel tree gets, as {repository path: tree path}."""
    files = {}
    for patch in spec.SERIES:
        for item in patch["items"]:
            if item[0] == "new":
                files[item[1]] = item[2]
            elif item[0] == "newglob":
                for src in sorted(glob.glob(os.path.join(TOP, item[1]))):
                    rel = os.path.relpath(src, TOP)
                    files[rel] = item[2] + os.path.basename(src)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(BUILD, "patchset"))
    ap.add_argument("--prefix", default="RFC PATCH")
    args = ap.parse_args()
    if not os.path.isdir(PRISTINE):
        die(f"{PRISTINE} missing (make kernel)")

    identity = run(["git", "var", "GIT_AUTHOR_IDENT"], cwd=TOP,
                   capture_output=True).stdout.rsplit(">", 1)[0] + ">"
    hunks = read_hunks()
    repo = os.path.join(BUILD, "patchset-work")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(repo)
    # Only the files the series touches: format-patch needs no more.
    for path in touched_paths(hunks):
        src = os.path.join(PRISTINE, path)
        if os.path.exists(src):
            os.makedirs(os.path.dirname(os.path.join(repo, path)), exist_ok=True)
            shutil.copy2(src, os.path.join(repo, path))
    run(["git", "init", "-q"], cwd=repo)
    run(["git", "add", "-A"], cwd=repo)
    run(["git", "commit", "-q", "-m", "base: " + version()], cwd=repo)

    used_new = set()
    for patch in spec.SERIES:
        maint = []
        for item in patch["items"]:
            kind = item[0]
            if kind == "hunks":
                path, regex = item[1], item[2]
                if path not in hunks:
                    die(f"no hunks for {path} in kernel/patches")
                chosen = [h for h in hunks[path] if not h.used and
                          (regex is None or re.search(regex, h.text))]
                if not chosen:
                    die(f"{patch['subject']}: no hunk of {path} matches {regex!r}")
                for h in chosen:
                    h.used = True
                apply_hunks(repo, path, chosen)
            elif kind in ("new", "newglob"):
                pairs = ([(item[1], item[2])] if kind == "new" else
                         [(os.path.relpath(s, TOP), item[2] + os.path.basename(s))
                          for s in sorted(glob.glob(os.path.join(TOP, item[1])))])
                for src, dst in pairs:
                    os.makedirs(os.path.dirname(os.path.join(repo, dst)), exist_ok=True)
                    shutil.copy2(os.path.join(TOP, src), os.path.join(repo, dst))
                    used_new.add(src)
            elif kind == "maint":
                maint += item[1:]
            elif kind == "insert":
                insert_after(repo, item[1], item[2], item[3])
            else:
                die(f"unknown item {kind}")
        if maint:
            add_maintainers(repo, maint, identity)
        run(["git", "add", "-A"], cwd=repo)
        msg = f"{patch['subject']}\n\n{patch['body']}\nSigned-off-by: {identity}\n"
        run(["git", "commit", "-q", "-F", "-"], cwd=repo, input=msg)

    left = [f"{h.path} ({h.origin}): {h.text.splitlines()[0]}"
            for hs in hunks.values() for h in hs if not h.used]
    if left:
        die("hunks not in any patch:\n  " + "\n  ".join(left))
    check_final(repo, hunks, used_new)

    shutil.rmtree(args.out, ignore_errors=True)
    run(["git", "format-patch", "-q", "--cover-letter", "--no-signature",
         f"--subject-prefix={args.prefix}", "-o", args.out, "HEAD~%d" % len(spec.SERIES)],
        cwd=repo)
    fill_cover_letter(args.out, identity)
    print(f"patchset: {len(spec.SERIES)} patches and a cover letter in {args.out}")


def version():
    env = {}
    with open(os.path.join(TOP, "kernel", "VERSION")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.strip().split("=", 1)
                env[k] = v.strip("'\"")
    return f"Linux {env['KERNEL_VERSION']} ({env['KERNEL_PACKAGE']} {env['KERNEL_PACKAGE_VERSION']})"


def check_final(repo, hunks, used_new):
    """The series must end in the tree that the tests ran on."""
    ours = set(new_files())
    missing = ours - used_new
    if missing:
        die("new files not in any patch: " + ", ".join(sorted(missing)))
    for path in list(hunks) + list(new_files().values()):
        a, b = os.path.join(repo, path), os.path.join(TREE, path)
        if not os.path.exists(b):
            die(f"{b} missing: run make kernel first")
        with open(a, "rb") as fa, open(b, "rb") as fb:
            if fa.read() != fb.read():
                die(f"{path}: the series does not end in build/linux's version")


def fill_cover_letter(out, identity):
    cover = sorted(glob.glob(os.path.join(out, "0000-*.patch")))[0]
    with open(os.path.join(TOP, "kernel", "patchset", "cover-letter.txt")) as f:
        subject, _, blurb = f.read().partition("\n\n")
    with open(cover) as f:
        text = f.read()
    text = text.replace("*** SUBJECT HERE ***", subject.strip())
    text = text.replace("*** BLURB HERE ***", blurb.strip() + "\n\nBase: " +
                        version() + ".\n\nSigned-off-by: " + identity)
    with open(cover, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
