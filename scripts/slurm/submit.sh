#!/usr/bin/env bash
# Runs an rnnlab sweep as a Slurm job array, then merges it:
#
#   scripts/slurm/submit.sh SHARDS BINARY [ARGS...]
#   e.g. scripts/slurm/submit.sh 8 target/release/sweep-imdb --set data.path=$PWD/data/aclImdb_v1.tar.gz
#
# Task I of the array runs `BINARY --shard I/SHARDS ARGS`; a second job, started when the array has ended, runs
# `BINARY --merge-only ARGS` and writes the summary and charts from every run folder. Finished runs are reused,
# so submitting again resumes. Run it from the project folder (configs/ is read from there).
# Environment: RNNLAB_OUT  results root, on a file system every node shares (default: results)
#              CPUS        CPUs (and libtorch threads) per array task (default: 2)
#              SBATCH_ARGS more sbatch options for both jobs, e.g. "--partition=cpu --time=02:00:00"
# Prints: array <job id> merge <job id>. Logs go to $RNNLAB_OUT/slurm/.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
shards=$1
bin=$(realpath "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${RNNLAB_OUT:-results}")
mkdir -p "$out/slurm"
# shellcheck disable=SC2086 # SBATCH_ARGS holds several options on purpose
array=$(sbatch --parsable --array="1-$shards" --cpus-per-task="${CPUS:-2}" --chdir="$PWD" ${SBATCH_ARGS:-} \
  --output="$out/slurm/shard-%A_%a.out" --export="ALL,RNNLAB_BIN=$bin,RNNLAB_OUT=$out" "$here/shard.sbatch" "$@")
args=$(printf '%q ' "$@")
# shellcheck disable=SC2086
merge=$(sbatch --parsable --dependency="afterany:$array" --cpus-per-task=1 --chdir="$PWD" ${SBATCH_ARGS:-} \
  --job-name=rnnlab-merge --output="$out/slurm/merge-%j.out" --wrap="$bin --merge-only --out $out $args")
echo "array $array merge $merge"
