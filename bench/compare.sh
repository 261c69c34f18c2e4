#!/usr/bin/env bash
# bench/compare.sh: run Skrytka and Dovecot side by side on this machine and
# print one table of medians with the ratio Skrytka/Dovecot.
#
#   bench/compare.sh            full run (sizes as in issue 8; takes long)
#   bench/compare.sh -quick     small sizes, 3 rounds, a few minutes
#   SERVERS=dovecot bench/compare.sh -quick    one server only
#
# Every size is an environment variable (see "knobs" below and
# bench/README.md). The script installs Dovecot from Debian's packages if it
# is absent, writes both servers' configuration into a temporary directory
# (WORK), loads the same corpus into both over LMTP, then for each round
# starts each server in turn (A B A B ...), measures its start-up, runs the
# workloads against it and stops it by its pid. Only one server runs at a
# time. Results go to $WORK/results-<run id>.jsonl (one file per run); the
# table is printed at the end and written to $WORK/table-<run id>.md and
# $WORK/table.md.
set -euo pipefail

# The whole script is one compound command, so bash reads all of it before
# running any: editing this file during a run does not change the run.
{

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

QUICK=${QUICK:-0}
for a in "$@"; do
	case "$a" in
	-quick) QUICK=1 ;;
	-h | -help | --help)
		sed -n '2,17p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument $a" >&2
		exit 2
		;;
	esac
done

# knobs (environment variables win over these defaults)
if [ "$QUICK" = 1 ]; then
	: "${ROUNDS:=3}" "${PER_USER:=40}" "${MAX_BYTES:=262144}" "${BIG_N:=5000}" "${IDLE_N:=100,300}"
	: "${CLIENTS:=50}" "${MIX_DUR:=10s}" "${DELIVER_DUR:=5s}" "${SESSIONS:=20}" "${POP3_CLIENTS:=20}"
	: "${APPEND_CLIENTS:=10}" "${APPEND_DUR:=5s}" "${BULK_N:=20000}" "${BULK_ACCOUNTS:=10}"
else
	: "${ROUNDS:=3}" "${PER_USER:=100}" "${MAX_BYTES:=4194304}" "${BIG_N:=100000}" "${IDLE_N:=2000,5000}"
	: "${CLIENTS:=50}" "${MIX_DUR:=30s}" "${DELIVER_DUR:=10s}" "${SESSIONS:=20}" "${POP3_CLIENTS:=20}"
	: "${APPEND_CLIENTS:=10}" "${APPEND_DUR:=10s}" "${BULK_N:=1000000}" "${BULK_ACCOUNTS:=100}"
fi
: "${SERVERS:=skrytka dovecot}"
: "${WORKLOADS:=6,1,2,3,4,5,8}" # 6 first: it reads the memory of a fresh server
: "${SEED:=1}"
: "${LOAD_SESSIONS:=20}"
: "${IDLE_PARALLEL:=32}"
: "${BULK_MAX_BYTES:=4096}"
# IDLE_N is a list of increasing steps; limits are sized for the last.
IDLE_MAX=${IDLE_N##*,}
: "${PASSWORD:=bench-password}"
: "${DOMAIN:=bench.test}"
WORK=${WORK:-$(mktemp -d /tmp/skrytka-bench.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"
mkdir -p "$WORK/bin"
# Each run writes its own results file, so a reused WORK directory never
# mixes an earlier run's rounds into this run's medians.
RUN_ID=$(date -u +%Y%m%d-%H%M%S)
: "${RESULTS:=$WORK/results-$RUN_ID.jsonl}"
touch "$RESULTS"

# ports: Dovecot 20xxx, Skrytka 21xxx, loopback only
D_IMAP=20143 D_POP3=20110 D_LMTP=20024
S_IMAP=21143 S_POP3=21110 S_SMTP=21025 S_LMTP=21024 S_SUBM=21587

log() { printf '%s compare: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cd "$repo"
log "work dir $WORK"
go build -o "$WORK/bin/skrytka-bench" ./bench/cmd/skrytka-bench
case " $SERVERS " in *" skrytka "*) go build -o "$WORK/bin/skrytka" ./cmd/skrytka ;; esac
case " $SERVERS " in
*" skrytka "*) go build -o "$WORK/bin/skrytka-bulkload" ./bench/cmd/skrytka-bulkload ;;
*) if [ "$BULK_N" -gt 0 ]; then go build -o "$WORK/bin/skrytka-bulkload" ./bench/cmd/skrytka-bulkload; fi ;;
esac
BENCH=$WORK/bin/skrytka-bench

common=(-domain "$DOMAIN" -password "$PASSWORD" -seed "$SEED" -sessions "$SESSIONS"
	-clients "$CLIENTS" -pop3-clients "$POP3_CLIENTS" -per-user "$PER_USER" -max-bytes "$MAX_BYTES"
	-big "$BIG_N" -idle "$IDLE_N" -idle-parallel "$IDLE_PARALLEL" -mix-dur "$MIX_DUR" -deliver-dur "$DELIVER_DUR" -load-sessions "$LOAD_SESSIONS"
	-append-clients "$APPEND_CLIENTS" -append-dur "$APPEND_DUR")
mapfile -t USERS < <("$BENCH" users "${common[@]}")
# Workload 7 at issue 8's size: a second pair of stores, written by the bulk
# loader (not over LMTP), BULK_N messages over BULK_ACCOUNTS INBOXes.
BULK_USERS=()
if [ "$BULK_N" -gt 0 ]; then
	BULK_PER=$((BULK_N / BULK_ACCOUNTS))
	for ((k = 1; k <= BULK_ACCOUNTS; k++)); do BULK_USERS+=("bulk$k@$DOMAIN"); done
fi

# Thousands of IDLE connections: Dovecot's imap processes each want an
# inotify instance (else they fall back to polling every 30 s), and every
# connection needs a file descriptor on both sides.
ulimit -n "$(ulimit -Hn)" || true
want_inotify=$((IDLE_MAX + 1024))
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt "$want_inotify" ]; then
	sysctl -q -w fs.inotify.max_user_instances="$want_inotify" ||
		log "could not raise fs.inotify.max_user_instances; Dovecot IDLE may fall back to polling"
fi

wait_port() { # host port seconds
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	return 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_pid() { # pid: TERM, then KILL after 30 s
	local pid=$1 i
	PID=
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# A server we started is stopped on any exit, also after a failed workload.
PID=
trap '[ -n "$PID" ] && stop_pid "$PID"' EXIT

ports_free() { # port...: fail if something already listens there
	local p
	for p in "$@"; do
		if port_open "$p"; then
			log "port $p is in use (a server left over from an earlier run?); stop it first"
			exit 1
		fi
	done
}

# ---------------------------------------------------------------- Dovecot
setup_dovecot() { # [instance]: dovecot (default) or dovecot-1m (the bulk store)
	local inst=${1:-dovecot}
	if ! command -v dovecot >/dev/null || ! [ -e /usr/lib/dovecot/lmtp ] || ! [ -e /usr/lib/dovecot/pop3 ]; then
		log "installing Dovecot from Debian's packages"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q dovecot-imapd dovecot-pop3d dovecot-lmtpd >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q dovecot-imapd dovecot-pop3d dovecot-lmtpd >/dev/null; }
	fi
	# The package's own instance must not hold our ports; we never start it.
	id skbench >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin skbench
	local uid gid d=$WORK/$inst
	uid=$(id -u skbench) gid=$(id -g skbench)
	# The bulk loader resumes a partly written Maildir itself.
	[ "$LOADED" = 1 ] || [ "$inst" != dovecot ] || rm -rf "$d/mail" "$d/state"
	mkdir -p "$d/run" "$d/state" "$d/mail" "$d/log"
	chown skbench:skbench "$d/mail"
	local hash u
	hash=$("$BENCH" hash -password "$PASSWORD")
	local -a users=("${USERS[@]}")
	[ "$inst" = dovecot ] || users=("${BULK_USERS[@]}")
	: >"$d/users"
	for u in "${users[@]}"; do
		printf '%s:{ARGON2ID}%s\n' "$u" "$hash" >>"$d/users"
	done
	chmod 644 "$d/users"
	local nproc
	nproc=$(nproc)
	cat >"$d/dovecot.conf" <<EOF
# Written by bench/compare.sh. Settings that differ from Debian's defaults,
# and why, are listed in bench/README.md.
instance_name = skbench${inst#dovecot}
base_dir = $d/run
state_dir = $d/state
log_path = $d/log/dovecot.log
listen = 127.0.0.1
protocols = imap pop3 lmtp
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_uid = $uid
mail_gid = $gid
first_valid_uid = $uid
last_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:$d/mail/%d/%n/Maildir
postmaster_address = postmaster@$DOMAIN
passdb {
  driver = passwd-file
  args = username_format=%u $d/users
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$d/mail/%d/%n
}
auth_cache_size = 10M
auth_cache_ttl = 1 hour
auth_cache_verify_password_with_worker = yes
default_process_limit = $((IDLE_MAX + 1000))
default_client_limit = $((IDLE_MAX * 2 + 1000))
default_vsz_limit = 1G
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $D_IMAP
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = $nproc
  process_limit = $((nproc * 4))
  client_limit = $((IDLE_MAX + 1000))
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $D_POP3
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = $nproc
  process_limit = $((nproc * 4))
}
service imap {
  process_limit = $((IDLE_MAX + 1000))
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $D_LMTP
  }
}
service auth {
  client_limit = $((IDLE_MAX * 2 + 1000))
}
service anvil {
  client_limit = $((IDLE_MAX * 3 + 3000))
}
protocol imap {
  mail_max_userip_connections = $((IDLE_MAX + 1000))
}
protocol pop3 {
  mail_max_userip_connections = 100
}
EOF
	dovecot -n -c "$d/dovecot.conf" >"$d/effective.conf" 2>"$d/config-check.log" ||
		{ cat "$d/config-check.log" >&2; exit 1; }
}

start_dovecot() { # [instance]; sets PID, T0, TARGET
	local d=$WORK/${1:-dovecot}
	ports_free $D_IMAP $D_POP3 $D_LMTP
	T0=$(date +%s%N)
	dovecot -F -c "$d/dovecot.conf" >>"$d/log/stdout.log" 2>&1 &
	PID=$!
	wait_port 127.0.0.1 $D_IMAP 60 || { tail -20 "$d/log/dovecot.log" >&2; exit 1; }
	TARGET=(-name dovecot -imap $D_IMAP -pop3 $D_POP3 -lmtp $D_LMTP -pids "$PID")
}

# ---------------------------------------------------------------- Skrytka
setup_skrytka() { # [instance]: skrytka (default) or skrytka-1m (the bulk store)
	local inst=${1:-skrytka}
	local d=$WORK/$inst
	mkdir -p "$d"
	cat >"$d/skrytka.toml" <<EOF
# Written by bench/compare.sh.
data_dir = "$d/data"
hostname = "bench.localhost"
domains = ["$DOMAIN"]

[imap]
listen = "127.0.0.1:$S_IMAP"
tls_listen = ""

[pop3]
listen = "127.0.0.1:$S_POP3"
tls_listen = ""

[smtp]
listen = "127.0.0.1:$S_SMTP"
# SPF/DKIM/DMARC checks query DNS; the benchmark stays on loopback.
auth_checks = false

[lmtp]
listen = "127.0.0.1:$S_LMTP"

[submission]
listen = "127.0.0.1:$S_SUBM"
tls_listen = ""

[auth]
allow_plaintext = "loopback"

[limits]
max_connections = $((IDLE_MAX * 2 + 1000))
EOF
	[ "$LOADED" = 1 ] && return 0
	[ "$inst" = skrytka ] || return 0 # the bulk loader creates its accounts and resumes
	rm -rf "$d/data"
	for u in "${USERS[@]}"; do
		printf '%s\n' "$PASSWORD" | "$WORK/bin/skrytka" user add "$u" -password-stdin -config "$d/skrytka.toml" >/dev/null
	done
}

start_skrytka() { # [instance]; sets PID, T0, TARGET
	local d=$WORK/${1:-skrytka}
	ports_free $S_IMAP $S_POP3 $S_SMTP $S_LMTP
	T0=$(date +%s%N)
	"$WORK/bin/skrytka" serve -config "$d/skrytka.toml" >>"$d/serve.log" 2>&1 &
	PID=$!
	local p any=0
	for p in $S_IMAP $S_LMTP; do
		if wait_port 127.0.0.1 "$p" 20; then any=1; break; fi
	done
	[ $any = 1 ] || { tail -20 "$d/serve.log" >&2; exit 1; }
	# The other listeners start within milliseconds of the first: wait
	# for each briefly (no fixed sleep: workload 7 measures from T0, and a
	# sleep here delayed its first greeting by 200 ms).
	for p in $S_IMAP $S_POP3 $S_SMTP $S_LMTP; do
		wait_port 127.0.0.1 "$p" 1 || true
	done
	TARGET=(-name skrytka -pids "$PID")
	for pair in imap:$S_IMAP pop3:$S_POP3 smtp:$S_SMTP lmtp:$S_LMTP; do
		if port_open "${pair#*:}"; then
			TARGET+=(-"${pair%%:*}" "${pair#*:}")
		else
			log "skrytka: no ${pair%%:*} listener yet; its workloads are skipped"
		fi
	done
}

# ---------------------------------------------------------------- run
# A WORK directory from an earlier run with the same sizes keeps its loaded
# stores (loading 100,000 messages takes many minutes): reuse it with WORK=.
sizes="seed=$SEED per_user=$PER_USER max_bytes=$MAX_BYTES big=$BIG_N users=${#USERS[@]}"
for s in $SERVERS; do
	if [ -f "$WORK/$s.loaded" ] && [ "$(cat "$WORK/$s.loaded")" = "$sizes" ]; then
		LOADED=1 "setup_$s"
		log "$s: corpus already loaded in $WORK ($sizes)"
		continue
	fi
	rm -f "$WORK/$s.loaded"
	LOADED=0 "setup_$s"
	"start_$s"
	log "$s: loading corpus: $PER_USER messages into each of $(( CLIENTS > POP3_CLIENTS ? CLIENTS : POP3_CLIENTS )) accounts, $BIG_N into big@"
	"$BENCH" load -what users "${common[@]}" "${TARGET[@]}"
	"$BENCH" load -what big "${common[@]}" "${TARGET[@]}"
	stop_pid "$PID"
	echo "$sizes" >"$WORK/$s.loaded"
done

# The bulk stores for workload 7 (start-up with BULK_N messages): written
# once per WORK directory by skrytka-bulkload (Skrytka: the embedded store's
# Go API; Dovecot: Maildir files), then every INBOX is SELECTed once, so
# that Dovecot builds its indexes (it does so lazily, on first access)
# before any round measures it.
bulk_sizes="seed=$SEED bulk=$BULK_N accounts=$BULK_ACCOUNTS max_bytes=$BULK_MAX_BYTES"
bulk_args=(-n "$BULK_N" -accounts "$BULK_ACCOUNTS" -max-bytes "$BULK_MAX_BYTES" -seed "$SEED" -domain "$DOMAIN")
warm_args=(-warm-prefix bulk -warm-accounts "$BULK_ACCOUNTS" -startup-want "${BULK_PER:-0}")
if [ "$BULK_N" -gt 0 ]; then
	for s in $SERVERS; do
		if [ -f "$WORK/$s-1m.loaded" ] && [ "$(cat "$WORK/$s-1m.loaded")" = "$bulk_sizes" ]; then
			LOADED=1 "setup_$s" "$s-1m"
			log "$s: bulk store already loaded in $WORK/$s-1m ($bulk_sizes)"
			continue
		fi
		rm -f "$WORK/$s-1m.loaded"
		LOADED=0 "setup_$s" "$s-1m"
		log "$s: bulk store: $BULK_N messages (1 KB - $BULK_MAX_BYTES bytes) over $BULK_ACCOUNTS INBOXes"
		t0=$(date +%s)
		case $s in
		skrytka)
			"$WORK/bin/skrytka-bulkload" -store skrytka -dir "$WORK/skrytka-1m/data" -password "$PASSWORD" "${bulk_args[@]}"
			;;
		dovecot)
			"$WORK/bin/skrytka-bulkload" -store maildir -dir "$WORK/dovecot-1m/mail" \
				-uid "$(id -u skbench)" -gid "$(id -g skbench)" "${bulk_args[@]}"
			;;
		esac
		"start_$s" "$s-1m"
		"$BENCH" warm "${common[@]}" "${TARGET[@]}" "${warm_args[@]}" || { stop_pid "$PID"; exit 1; }
		stop_pid "$PID"
		log "$s: bulk store written and warmed in $(($(date +%s) - t0)) s; $(du -sh "$WORK/$s-1m" | cut -f1) on disk"
		echo "$bulk_sizes" >"$WORK/$s-1m.loaded"
	done
fi

# Schema migrations (a new index, say) run when a store is first opened by
# a newer build and can take minutes on a big store: run them now, so that
# no round's start-up pays for them. Then, for the main store, fill the
# text index from its queue: the store does that in the background once a
# delivery or a search wakes its indexer (a migration that adds the index
# queues every stored message), and the workloads must not measure a
# server busy indexing what it was handed. The bulk store's queue is left
# as it is: workload 7 only starts the server, logs in and SELECTs, which
# neither read the text index nor wake the indexer, and indexing a million
# messages takes about an hour of CPU.
case " $SERVERS " in *" skrytka "*)
	for inst in skrytka skrytka-1m; do
		[ -f "$WORK/$inst/skrytka.toml" ] && [ -d "$WORK/$inst/data" ] || continue
		t0=$(date +%s)
		"$WORK/bin/skrytka" migrate -config "$WORK/$inst/skrytka.toml" >/dev/null
		t1=$(date +%s)
		[ "$inst" = skrytka ] && "$WORK/bin/skrytka-bulkload" -index-only -dir "$WORK/$inst/data"
		log "$WORK/$inst: skrytka migrate $((t1 - t0)) s, text index filled in $(($(date +%s) - t1)) s"
	done
	;;
esac

total_msgs=$((BIG_N + PER_USER * (CLIENTS > POP3_CLIENTS ? CLIENTS : POP3_CLIENTS)))
for ((r = 1; r <= ROUNDS; r++)); do
	for s in $SERVERS; do
		log "round $r: $s"
		"start_$s"
		"$BENCH" startup "${common[@]}" "${TARGET[@]}" -t0-ns "$T0" -startup-want "$BIG_N" \
			-startup-total "$total_msgs" -round "$r" -out "$RESULTS"
		"$BENCH" run "${common[@]}" "${TARGET[@]}" -w "$WORKLOADS" -round "$r" -out "$RESULTS" ||
			{ stop_pid "$PID"; exit 1; }
		stop_pid "$PID"
		[ "$BULK_N" -gt 0 ] || continue
		log "round $r: $s with the bulk store"
		"start_$s" "$s-1m"
		"$BENCH" startup "${common[@]}" "${TARGET[@]}" -t0-ns "$T0" -startup-user "bulk1@$DOMAIN" \
			-startup-want "$BULK_PER" -startup-workload 7-startup-bulk \
			-startup-params "$BULK_N msgs (1-$((BULK_MAX_BYTES / 1024)) KB) in $BULK_ACCOUNTS INBOXes of $BULK_PER" \
			-round "$r" -out "$RESULTS" || { stop_pid "$PID"; exit 1; }
		stop_pid "$PID"
	done
done

{
	echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(dovecot --version | cut -d' ' -f1) Dovecot, $ROUNDS rounds, medians."
	echo "Sizes: PER_USER=$PER_USER MAX_BYTES=$MAX_BYTES BIG_N=$BIG_N IDLE_N=$IDLE_N CLIENTS=$CLIENTS MIX_DUR=$MIX_DUR DELIVER_DUR=$DELIVER_DUR SESSIONS=$SESSIONS POP3_CLIENTS=$POP3_CLIENTS IDLE_PARALLEL=$IDLE_PARALLEL APPEND_CLIENTS=$APPEND_CLIENTS APPEND_DUR=$APPEND_DUR BULK_N=$BULK_N BULK_ACCOUNTS=$BULK_ACCOUNTS BULK_MAX_BYTES=$BULK_MAX_BYTES"
	echo
	"$BENCH" table -a skrytka -b dovecot "$RESULTS"
} | tee "$WORK/table-$RUN_ID.md"
cp "$WORK/table-$RUN_ID.md" "$WORK/table.md"
log "results in $RESULTS, table in $WORK/table-$RUN_ID.md (and $WORK/table.md)"
exit 0
}
