#!/bin/sh
# Build the wheel and sdist, check them with twine, install the wheel into a fresh virtual
# environment outside the repository and run the CLI from there: --help, check, a short demo.
#
#   scripts/package-test.sh            (PYTHON: the interpreter with the dependencies, default .venv)
#
# Fast and offline: the fresh environment gets the wheel alone (--no-deps); its dependencies are
# the development environment's, seen through a folder of links that leaves out orchestra itself
# (the editable install and its metadata), so `import orchestra` can only find the wheel.
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/orchestra-package-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

step() { printf '\n== package-test: %s\n' "$*"; }

step "build the sdist and the wheel from a copy of the sources"
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard -- pyproject.toml README.md orchestra tests \
    | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$WORK/src"
"$PYTHON" -m build --no-isolation --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log"; exit 1; }
ls -l "$WORK/dist"
"$PYTHON" -m twine check --strict "$WORK/dist"/*
"$PYTHON" -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
sys.exit('the wheel must not ship recorded tables (AlpacaEval is CC BY-NC 4.0)' \
         if any(n.endswith(('.parquet', '.jsonl.gz')) for n in names) else 0)" "$WORK/dist"/*.whl

step "a fresh virtual environment outside the repository"
"$PYTHON" -m venv "$WORK/venv"
SITE=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
mkdir "$WORK/deps"
for entry in "$SITE"/*; do
    case $(basename "$entry") in
        orchestra* | __editable__* | *.pth | pip | pip-*) ;;
        *) ln -s "$entry" "$WORK/deps/" ;;
    esac
done
VENV_SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "$WORK/deps" >"$VENV_SITE/dependencies.pth"
"$WORK/venv/bin/python" -m pip install --quiet --no-deps --no-index "$WORK/dist"/*.whl
if "$WORK/venv/bin/python" -m pip check | grep -i '^orchestra-research '; then
    echo "the wheel's declared dependencies are not met"; exit 1
fi

# The user's side: a project folder with a config and a recorded table, and an empty folder.
mkdir -p "$WORK/project/data/alpacaeval" "$WORK/empty"
cp config.yaml "$WORK/project/"
cp data/alpacaeval/responses.parquet data/alpacaeval/LICENSE.md "$WORK/project/data/alpacaeval/"
run() (cd "$1" && shift && env -u PYTHONPATH MLFLOW_DISABLE_TELEMETRY=true "$WORK/venv/bin/$@")

step "orchestra comes from the wheel"
run "$WORK/empty" python -c "import orchestra, sys; print(orchestra.__file__); \
sys.exit(not orchestra.__file__.startswith('$WORK/venv/'))"

step "orchestra --help"
run "$WORK/empty" orchestra --help

step "orchestra check (in a project folder with config.yaml)"
run "$WORK/project" orchestra check

step "orchestra demo --data PATH --limit 20 (in an empty folder: the packaged demo config)"
run "$WORK/empty" orchestra demo --data "$WORK/project/data/alpacaeval/responses.parquet" --limit 20 \
    >"$WORK/demo.out"
cat "$WORK/demo.out"
grep -q "^always-gpt-4 " "$WORK/demo.out"
grep -q "Holm-adjusted over 3 comparisons" "$WORK/demo.out"

step "passed"
