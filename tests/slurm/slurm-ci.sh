#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost (recipe: shared/notes/slurm-local.md): start it, submit
# slurm/lorahub-node.sbatch for a small job, wait, and check the HDF5 results against a serial run.
#   tests/slurm/slurm-ci.sh LORAHUB_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lorahub=$(realpath "${1:?usage: slurm-ci.sh path/to/lorahub}")
build=$(dirname "$(dirname "$(dirname "$lorahub")")")
"$root/scripts/install-deps.sh" --slurm

D=$(mktemp -d /tmp/lorahub-slurm.XXXXXX)
export SLURM_CONF=$D/slurm.conf
mkdir -p "$D/state" "$D/spool" "$D/log"
cat > "$SLURM_CONF" <<CONF
ClusterName=lorahubci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
MailProg=/bin/true
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=4 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

stop_cluster() {
  for f in "$D/slurmd.pid" "$D/slurmctld.pid"; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  for _ in $(seq 50); do pgrep -x slurmstepd > /dev/null || break; sleep 0.1; done
}
trap stop_cluster EXIT

slurmctld && slurmd -N localhost
for _ in $(seq 60); do [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break; sleep 0.5; done
sinfo -h -o %T | grep -qx idle || { cat "$D"/log/*.log; echo "slurm-ci: the node never became idle"; exit 1; }

# The toy world and its job (3 tasks, one of them broken on purpose), plus a serial reference result.
"$build/tests/app/make_toy_world" "$D/toy" > /dev/null
(cd "$D/toy" && "$lorahub" --threads 1 run --config job.toml --out serial.h5 2> serial.log)

wait_job() {  # job id, timeout in s: 0 only if every element ends COMPLETED
  local s deadline=$((SECONDS + $2))
  while :; do
    s=$(scontrol show job -o "$1" | grep -oE 'JobState=[A-Z_]+' | sort -u | tr '\n' ' ')
    [[ $s =~ PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED ]] || break
    [ $SECONDS -lt $deadline ] || { echo "slurm-ci: job $1 timed out: $s"; scancel "$1"; return 1; }
    sleep 0.5
  done
  echo "slurm-ci: job $1: $s"
  [ "$s" = "JobState=COMPLETED " ]
}

cd "$D/toy"
# The one-node script as users submit it; this node has no GPUs, so the GPU request is dropped here.
id=$(LORAHUB="$lorahub" sbatch --parsable --ntasks=3 --gpus-per-node=0 --cpus-per-task=1 --mem=0 \
       --export=ALL,LORAHUB="$lorahub" "$root/slurm/lorahub-node.sbatch" job.toml slurm.h5)
ok=0
wait_job "$id" 300 || ok=1
out="lorahub-$id.out"
cat "$out" 2>/dev/null || true
[ $ok = 0 ] || { cat "$D"/log/*.log | tail -50; exit 1; }
# Slurm can report COMPLETED for a step that never ran (see the notes): check the output itself.
grep -q "15 runs written to slurm.h5 (5 failed, 0 already complete)" "$out" || { echo "slurm-ci: unexpected output"; exit 1; }
"$build/tests/app/compare_results" serial.h5 slurm.h5

# The array variant: 2 elements, each with every 2nd task, merged back into one file.
id=$(sbatch --parsable --array=0-1 --ntasks=2 --gpus-per-node=0 --cpus-per-task=1 --mem=0 \
       --export=ALL,LORAHUB="$lorahub" "$root/slurm/lorahub-array.sbatch" job.toml part)
ok=0
wait_job "$id" 300 || ok=1
cat lorahub-array-"${id}"_*.out 2>/dev/null || true
[ $ok = 0 ] || { cat "$D"/log/*.log | tail -50; exit 1; }
"$lorahub" merge merged.h5 part-0.h5 part-1.h5
"$build/tests/app/compare_results" --ignore-config serial.h5 merged.h5
echo "slurm-ci: ok (sbatch one-node job and job array match the serial run)"
