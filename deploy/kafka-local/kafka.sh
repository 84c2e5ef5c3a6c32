#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft) for development and tests, without Docker.
#
#   kafka.sh start|stop|status|restart|fetch [--data-dir DIR] [--port N] [--controller-port N]
#            [--tls-dir DIR --sasl-ssl-port N --ssl-port N --scram-user NAME:PASSWORD]
#
# The broker's jars come from Maven Central through Maven, once, into a cache outside the
# repository; the broker's data, log and pid file live in a data directory the caller picks.
#
# Environment (flags win over it):
#   SEGSTREAM_KAFKA_DATA             data directory (default: <repo>/.run/kafka)
#   SEGSTREAM_KAFKA_PORT             client port on 127.0.0.1 (default 9092)
#   SEGSTREAM_KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default 9093)
#   SEGSTREAM_KAFKA_VERSION          kafka_2.13 version (default 4.4.0)
#   SEGSTREAM_KAFKA_CACHE            jar cache (default ~/.cache/segstream/kafka-<version>)
#   SEGSTREAM_KAFKA_HEAP             JVM heap, -Xmx (default 768m; -Xms is 512m or less)
#   SEGSTREAM_KAFKA_START_TIMEOUT    seconds to wait for the broker to come up (default 90)
#   SEGSTREAM_MAVEN_REPO             Maven local repository (default: Maven's own, ~/.m2/repository)
#   SEGSTREAM_KAFKA_REQUEST_LOG      a file; when set, the broker logs every request it answers
#                                    there (kafka.request.logger at DEBUG: api, totalTimeMs,
#                                    queue/local/remote/send times), for telling broker time from
#                                    client time in measurements. Heavy: not for tests.
#
# Secured listeners (each off unless its port is given; the PLAINTEXT listener on 127.0.0.1
# stays, as the inter-broker listener):
#   SEGSTREAM_KAFKA_TLS_DIR          folder with broker.pem (the broker's private key, unencrypted
#                                    PKCS#8, then its certificate chain) and ca.pem (the CA that
#                                    signs client certificates)
#   SEGSTREAM_KAFKA_SASL_SSL_PORT    a SASL_SSL listener on 127.0.0.1 (SCRAM-SHA-512)
#   SEGSTREAM_KAFKA_SSL_PORT         an SSL listener on 127.0.0.1 that requires a client
#                                    certificate signed by ca.pem (mutual TLS)
#   SEGSTREAM_KAFKA_SCRAM_USER       NAME:PASSWORD of the SCRAM-SHA-512 user written into the
#                                    metadata when the storage is formatted (KRaft: before the
#                                    broker first runs)
#   SEGSTREAM_KAFKA_EXTRA_PROPERTIES broker properties appended to server.properties, one
#                                    per line or separated by ";" (for measurements, e.g.
#                                    transaction.partition.verification.enable=false)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"

kafka_version="${SEGSTREAM_KAFKA_VERSION:-4.4.0}"
cache_dir="${SEGSTREAM_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/segstream/kafka-$kafka_version}"
libs_dir="$cache_dir/libs"
data_dir="${SEGSTREAM_KAFKA_DATA:-$repo_root/.run/kafka}"
port="${SEGSTREAM_KAFKA_PORT:-9092}"
controller_port="${SEGSTREAM_KAFKA_CONTROLLER_PORT:-9093}"
heap="${SEGSTREAM_KAFKA_HEAP:-768m}"
start_timeout="${SEGSTREAM_KAFKA_START_TIMEOUT:-90}"
tls_dir="${SEGSTREAM_KAFKA_TLS_DIR:-}"
sasl_ssl_port="${SEGSTREAM_KAFKA_SASL_SSL_PORT:-}"
ssl_port="${SEGSTREAM_KAFKA_SSL_PORT:-}"
scram_user="${SEGSTREAM_KAFKA_SCRAM_USER:-}"
stop_timeout=30

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

parse_flags() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --data-dir) data_dir="${2:?--data-dir needs a value}"; shift 2 ;;
            --port) port="${2:?--port needs a value}"; shift 2 ;;
            --controller-port) controller_port="${2:?--controller-port needs a value}"; shift 2 ;;
            --tls-dir) tls_dir="${2:?--tls-dir needs a value}"; shift 2 ;;
            --sasl-ssl-port) sasl_ssl_port="${2:?--sasl-ssl-port needs a value}"; shift 2 ;;
            --ssl-port) ssl_port="${2:?--ssl-port needs a value}"; shift 2 ;;
            --scram-user) scram_user="${2:?--scram-user needs a value}"; shift 2 ;;
            *) usage ;;
        esac
    done
    data_dir="$(mkdir -p "$data_dir" && cd "$data_dir" && pwd)"
    pid_file="$data_dir/kafka.pid"
    log_file="$data_dir/kafka.log"
    config_file="$data_dir/server.properties"
    if [[ -n "$sasl_ssl_port$ssl_port" ]]; then
        [[ -n "$tls_dir" && -f "$tls_dir/broker.pem" && -f "$tls_dir/ca.pem" ]] \
            || die "secured listeners need --tls-dir DIR with broker.pem and ca.pem"
        tls_dir="$(cd "$tls_dir" && pwd)"
    fi
    if [[ -n "$sasl_ssl_port" && "$scram_user" != *:* ]]; then
        die "a SASL_SSL listener needs --scram-user NAME:PASSWORD"
    fi
}

need_java() {
    command -v java >/dev/null 2>&1 \
        || die "java not found: install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    local major
    major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    [[ -n "$major" && "$major" -ge 17 ]] \
        || die "Kafka $kafka_version needs Java 17 or newer; 'java -version' says: $(java -version 2>&1 | head -n1)"
}

# Resolve the broker's runtime jars once. A lock keeps two concurrent callers (two test
# sessions, make run beside make test) from downloading into the same folder; the jars land
# in a temporary folder that is renamed into place only when Maven succeeded.
fetch_jars() {
    [[ -f "$libs_dir/.complete" ]] && return 0
    command -v mvn >/dev/null 2>&1 \
        || die "mvn not found: Maven is needed once to fetch the Kafka jars (Debian: apt-get install maven)"
    mkdir -p "$cache_dir"
    exec 9>"$cache_dir/.lock"
    flock 9
    if [[ ! -f "$libs_dir/.complete" ]]; then
        echo "kafka.sh: fetching Kafka $kafka_version jars into $libs_dir (once)" >&2
        local staging="$cache_dir/libs.partial"
        rm -rf "$staging"
        local maven_args=(-B -q -f "$here/pom.xml" "-Dkafka.version=$kafka_version"
            dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$staging")
        if [[ -n "${SEGSTREAM_MAVEN_REPO:-}" ]]; then
            maven_args+=("-Dmaven.repo.local=$SEGSTREAM_MAVEN_REPO")
        fi
        mvn "${maven_args[@]}" >&2 || die "Maven could not resolve org.apache.kafka:kafka_2.13:$kafka_version"
        ls "$staging"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven produced no kafka_2.13 jar in $staging"
        touch "$staging/.complete"
        rm -rf "$libs_dir"
        mv "$staging" "$libs_dir"
    fi
    flock -u 9
}

running_pid() {
    [[ -f "$pid_file" ]] || return 1
    local pid
    pid="$(cat "$pid_file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

port_open() {
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

write_config() {
    local listeners="PLAINTEXT://127.0.0.1:$port"
    local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if [[ -n "$sasl_ssl_port" ]]; then
        listeners+=",SASL_SSL://127.0.0.1:$sasl_ssl_port"
        protocols+=",SASL_SSL:SASL_SSL"
    fi
    if [[ -n "$ssl_port" ]]; then
        listeners+=",SSL://127.0.0.1:$ssl_port"
        protocols+=",SSL:SSL"
    fi
    cat >"$config_file" <<EOF
# Written by deploy/kafka-local/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listeners,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$data_dir/logs
# One node: every internal topic has one replica. Few internal partitions make the first
# consumer group and the first transaction start fast.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=1
# Tests and the worker create every topic they use, with the configs they need.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
    if [[ -n "$sasl_ssl_port" ]]; then
        cat >>"$config_file" <<EOF
# SASL_SSL: TLS with the broker's certificate, then SCRAM-SHA-512 (users live in the metadata).
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$tls_dir/broker.pem
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
    fi
    if [[ -n "$ssl_port" ]]; then
        cat >>"$config_file" <<EOF
# SSL: mutual TLS; a client without a certificate signed by ca.pem is refused.
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$tls_dir/broker.pem
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$tls_dir/ca.pem
listener.name.ssl.ssl.client.auth=required
EOF
    fi
    if [[ -n "${SEGSTREAM_KAFKA_EXTRA_PROPERTIES:-}" ]]; then
        echo "# SEGSTREAM_KAFKA_EXTRA_PROPERTIES" >>"$config_file"
        tr ';' '\n' <<<"$SEGSTREAM_KAFKA_EXTRA_PROPERTIES" >>"$config_file"
    fi
}

format_storage() {
    [[ -f "$data_dir/logs/meta.properties" ]] && return 0
    # A cluster id is 16 random bytes in URL-safe base64 without padding (what
    # `StorageTool random-uuid` prints), made here to save a JVM start.
    local cluster_id
    # The id must not start with "-": StorageTool would read it as an option.
    cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
    done
    local scram=()
    if [[ -n "$sasl_ssl_port" ]]; then
        scram=(--add-scram "SCRAM-SHA-512=[name=${scram_user%%:*},password=${scram_user#*:}]")
    fi
    java -cp "$libs_dir/*" -Dlog4j2.configurationFile="$here/log4j2.properties" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$config_file" "${scram[@]}" \
        >>"$log_file" 2>&1 \
        || { tail -n 20 "$log_file" >&2; die "formatting storage in $data_dir/logs failed"; }
}

# The log4j2 configuration the broker runs with: the repository's, or with
# SEGSTREAM_KAFKA_REQUEST_LOG a copy in the data directory that also sends the request log
# (one line per answered request, with its timings) to that file.
broker_log_config() {
    local request_log="${SEGSTREAM_KAFKA_REQUEST_LOG:-}"
    if [[ -z "$request_log" ]]; then
        echo "$here/log4j2.properties"
        return 0
    fi
    local derived="$data_dir/log4j2-request-log.properties"
    sed 's/^logger\.request\.level = .*/logger.request.level = debug/' \
        "$here/log4j2.properties" >"$derived"
    cat >>"$derived" <<EOF

logger.request.additivity = false
logger.request.appenderRef.requests.ref = REQUESTS
appender.requests.type = File
appender.requests.name = REQUESTS
appender.requests.fileName = $request_log
appender.requests.layout.type = PatternLayout
appender.requests.layout.pattern = [%d{HH:mm:ss.SSS}] %m%n
EOF
    echo "$derived"
}

cmd_start() {
    need_java
    fetch_jars
    if pid="$(running_pid)"; then
        echo "kafka.sh: already running (pid $pid) with data in $data_dir" >&2
        echo "127.0.0.1:$port"
        return 0
    fi
    port_open "$port" && die "port $port on 127.0.0.1 is taken by another process; set SEGSTREAM_KAFKA_PORT"
    port_open "$controller_port" \
        && die "port $controller_port on 127.0.0.1 is taken; set SEGSTREAM_KAFKA_CONTROLLER_PORT"
    local extra
    for extra in $sasl_ssl_port $ssl_port; do
        port_open "$extra" && die "port $extra on 127.0.0.1 is taken by another process"
    done
    mkdir -p "$data_dir/logs"
    write_config
    format_storage
    local xms=512m
    [[ "$heap" =~ ^([0-9]+)m$ && "${BASH_REMATCH[1]}" -lt 512 ]] && xms="$heap"
    # setsid: the broker gets its own session, so a Ctrl-C meant for `make run` or pytest does
    # not reach it; it is stopped by `kafka.sh stop`, after the processes that use it.
    setsid java "-Xms$xms" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$(broker_log_config)" \
        -cp "$libs_dir/*" kafka.Kafka "$config_file" \
        >>"$log_file" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pid_file"
    local waited=0
    # Ready when the client port accepts connections and the broker says it has started
    # (the port opens a moment before the broker has its metadata).
    until port_open "$port" && grep -q "Kafka Server started" "$log_file"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pid_file"
            tail -n 30 "$log_file" >&2
            die "the broker exited during start-up; log: $log_file"
        fi
        if ((waited >= start_timeout * 4)); then
            tail -n 30 "$log_file" >&2
            stop_pid "$pid"
            die "the broker did not start within ${start_timeout}s; log: $log_file"
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    echo "kafka.sh: broker up on 127.0.0.1:$port (pid $pid, data $data_dir)" >&2
    echo "127.0.0.1:$port"
}

stop_pid() {
    local pid="$1" waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= stop_timeout * 4)); then
            echo "kafka.sh: broker (pid $pid) ignored SIGTERM for ${stop_timeout}s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    rm -f "$pid_file"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$pid_file"
        echo "kafka.sh: not running (data $data_dir)" >&2
        return 0
    fi
    stop_pid "$pid"
    echo "kafka.sh: stopped (pid $pid)" >&2
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        if port_open "$port"; then
            echo "running: pid $pid, 127.0.0.1:$port, data $data_dir"
            return 0
        fi
        echo "starting or unhealthy: pid $pid, port $port closed, data $data_dir"
        return 1
    fi
    echo "stopped (data $data_dir)"
    return 3
}

main() {
    [[ $# -ge 1 ]] || usage
    local command="$1"
    shift
    parse_flags "$@"
    case "$command" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        restart) cmd_stop && cmd_start ;;
        fetch) need_java && fetch_jars && echo "$libs_dir" ;;
        *) usage ;;
    esac
}

main "$@"
