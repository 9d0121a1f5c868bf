#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying the job-array scripts and for the test suite:
#   scripts/slurm/local-cluster.sh start DIR   # munged + slurmctld + slurmd, state and logs in DIR; prints SLURM_CONF
#   scripts/slurm/local-cluster.sh stop DIR
# Needs Debian's slurm-wlm and munge (make test installs them) and root (the daemons run as the current user).
set -euo pipefail
cmd=${1:?start|stop}; dir=$(realpath -m "${2:?state directory}")
stop() {
  for p in slurmd slurmctld munged; do
    [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  sleep 1
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
for b in munged slurmctld slurmd sbatch; do
  command -v "$b" >/dev/null || { echo "local-cluster: $b not found (apt-get install slurm-wlm munge)" >&2; exit 2; }
done
mkdir -p "$dir"/{spool,state,munge}
host=$(hostname -s)
user=$(id -un)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
# A port pair from the directory's name, so that two clusters on one machine do not collide.
port=$(( 20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 ))
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed"
cat > "$dir/slurm.conf" <<CONF
ClusterName=rnnlab
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
# Ready when the node accepts work.
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then echo "SLURM_CONF=$SLURM_CONF"; exit 0; fi
  sleep 0.5
done
echo "local-cluster: the node did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1
