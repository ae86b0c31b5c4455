#!/usr/bin/env bash
# A real Hyperledger Fabric network as native processes on 127.0.0.1, no Docker: one Raft
# orderer, Org1 (hospital) and Org2 (research) with one peer each, channel `health`, and the
# `custodia` chaincode run as an external service (chaincode-as-a-service) by
# fabric-chaincode-node. Everything lives in one temporary directory, recorded in .state so
# that `down` finds and stops exactly the processes `up` started.
#
#   network.sh up      build the binaries if needed, start everything, deploy, smoke-test
#   network.sh down    stop every process `up` started and delete the network's directory
#   network.sh status  say whether the network is up and where
#   network.sh env     print the adapter's environment (FABRIC_*) for Org1's client user
#   network.sh stop NODE / start NODE
#                      stop or restart one process of a running network, for failure tests:
#                      NODE is orderer, peer0.org1, peer0.org2 or chaincode; `start` returns
#                      once the node is healthy again (and, for a peer, knows the other org's)
#
# `up` waits on health endpoints and on the ledger itself, never on fixed sleeps, and tears
# down whatever it had started when any step fails.
set -euo pipefail

readonly CHANNEL=health
readonly CC_NAME=custodia
readonly CC_VERSION=1.0
readonly CC_SEQUENCE=1
readonly CC_LABEL="${CC_NAME}_${CC_VERSION}"
# Non-default ports, so that the network does not clash with a Fabric sample or with itself:
# a peer's operations endpoint and the orderer's admin endpoint both default to 9443.
readonly ORDERER_PORT=7150 ORDERER_ADMIN_PORT=7153 ORDERER_OPS_PORT=7154
readonly PEER1_PORT=7151 PEER1_CC_PORT=7152 PEER1_OPS_PORT=7155
readonly PEER2_PORT=7251 PEER2_CC_PORT=7252 PEER2_OPS_PORT=7255
readonly CHAINCODE_PORT=7160
# Blocks are cut after BatchTimeout or MaxMessageCount transactions, whichever comes first. The
# defaults are fast test settings; benchmarks of production-like batching set, for `up`,
# FABRIC_BATCH_TIMEOUT (e.g. 250ms, 2s) and FABRIC_MAX_MESSAGE_COUNT (e.g. 100, 500).
readonly BATCH_TIMEOUT="${FABRIC_BATCH_TIMEOUT:-200ms}"
readonly MAX_MESSAGE_COUNT="${FABRIC_MAX_MESSAGE_COUNT:-10}"
# Upper bounds on each wait, in seconds; they are limits, not delays.
readonly WAIT_START=60 WAIT_LEADER=60 WAIT_GOSSIP=60

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="${FABRIC_BIN:-$here/bin}"
# The caller's FABRIC_CFG_PATH, if any: `up` points FABRIC_CFG_PATH at the network's own
# config directory, and this is where it takes core.yaml and orderer.yaml from first.
readonly caller_cfg_path="${FABRIC_CFG_PATH:-}"
state_file="$here/.state"
export PATH="$bin:$PATH"
# Logs go to files: no colour codes, and gRPC's connection chatter only when it is a warning.
export FABRIC_LOGGING_SPEC="${FABRIC_LOGGING_SPEC:-info:grpc=warn}"
plain_format='%{time:2006-01-02 15:04:05.000} %{level:.4s} [%{module}] %{shortfunc} -> %{message}'
export FABRIC_LOGGING_FORMAT="${FABRIC_LOGGING_FORMAT:-$plain_format}"

log() { echo "[fabric] $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- waiting --------------------------------------------------------------------------------

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 200 ms until it succeeds.
wait_until() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
healthy() { curl -sf --max-time 2 "http://127.0.0.1:$1/healthz" | grep -q '"status":"OK"'; }
# A Prometheus gauge on an operations endpoint is at least the given value.
metric_at_least() {
  curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" |
    awk -v name="$2" -v min="$3" '$1 == name && $2 + 0 >= min + 0 { found = 1 } END { exit !found }'
}

# --- processes ------------------------------------------------------------------------------

# start NAME COMMAND...: runs COMMAND in the background, detached from this shell's stdio (a
# caller reading our output, such as a test's global setup, must not wait on the network's
# pipes), logging to logs/NAME.log, and records "pid name" in the network's pids file.
start() {
  local name=$1
  shift
  "$@" </dev/null >>"$NET/logs/$name.log" 2>&1 &
  echo "$! $name" >>"$NET/pids"
  log "started $name (pid $!), log $NET/logs/$name.log"
}

# Stops the processes recorded in DIR/pids, newest first: TERM, then KILL after 10 s. A pid is
# signalled only while it is still the process we started (its command line names our
# network directory or our chaincode id), so a recycled pid is never touched.
stop_all() {
  local dir=$1 pid name deadline
  [[ -f "$dir/pids" ]] || return 0
  while read -r pid name; do
    if ours "$pid" "$dir"; then
      kill -TERM "$pid" 2>/dev/null || true
      log "stopping $name (pid $pid)"
    fi
  done < <(tac "$dir/pids")
  deadline=$((SECONDS + 10))
  while read -r pid name; do
    while ours "$pid" "$dir" && ((SECONDS < deadline)); do sleep 0.1; done
    if ours "$pid" "$dir"; then
      log "$name (pid $pid) ignored TERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$dir/pids"
  rm -f "$dir/pids"
}

ours() {
  local pid=$1 dir=$2
  # environ is NUL-separated; grep reads it itself (a pipe into `grep -q` could fail under
  # pipefail when grep stops reading early). A process that has exited answers "no".
  grep -qzxF "CUSTODIA_FABRIC_NET=$dir" "/proc/$pid/environ" 2>/dev/null
}

# --- identities and commands ----------------------------------------------------------------

crypto() { echo "$NET/config/crypto"; }
orderer_dir() { echo "$(crypto)/ordererOrganizations/custodia.local/orderers/orderer.custodia.local"; }
orderer_ca() { echo "$(crypto)/ordererOrganizations/custodia.local/tlsca/tlsca.custodia.local-cert.pem"; }
org_dir() { echo "$(crypto)/peerOrganizations/org$1.custodia.local"; }
peer_dir() { echo "$(org_dir "$1")/peers/peer0.org$1.custodia.local"; }
peer_ca() { echo "$(org_dir "$1")/tlsca/tlsca.org$1.custodia.local-cert.pem"; }
peer_port() { if [[ $1 == 1 ]]; then echo $PEER1_PORT; else echo $PEER2_PORT; fi; }

# as_admin ORG COMMAND...: runs a peer CLI command as ORG's admin against ORG's peer.
as_admin() {
  local org=$1
  shift
  CORE_PEER_LOCALMSPID="Org${org}MSP" \
    CORE_PEER_MSPCONFIGPATH="$(org_dir "$org")/users/Admin@org$org.custodia.local/msp" \
    CORE_PEER_ADDRESS="127.0.0.1:$(peer_port "$org")" \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_TLS_ROOTCERT_FILE="$(peer_ca "$org")" \
    "$@"
}

orderer_args() { echo -o "127.0.0.1:$ORDERER_PORT" --tls --cafile "$(orderer_ca)"; }
both_peers_args() {
  echo --peerAddresses "127.0.0.1:$PEER1_PORT" --tlsRootCertFiles "$(peer_ca 1)" \
    --peerAddresses "127.0.0.1:$PEER2_PORT" --tlsRootCertFiles "$(peer_ca 2)"
}

# --- up -------------------------------------------------------------------------------------

has_node_config() { [[ -f "$1/core.yaml" && -f "$1/orderer.yaml" ]]; }

# Where core.yaml and orderer.yaml come from, first found: FABRIC_CFG_PATH as the caller gave it;
# config/ beside the binaries, as a release archive unpacks (bin/ and config/); the sampleconfig/
# of the Fabric module that build.sh builds from, in Go's module cache. Says which it took.
node_config_dir() {
  local dir
  if [[ -n $caller_cfg_path ]]; then
    has_node_config "$caller_cfg_path" ||
      die "FABRIC_CFG_PATH=$caller_cfg_path holds no core.yaml and orderer.yaml"
    log "core.yaml and orderer.yaml from FABRIC_CFG_PATH ($caller_cfg_path)"
    echo "$caller_cfg_path"
    return 0
  fi
  if has_node_config "$bin/../config"; then
    dir="$(cd "$bin/../config" && pwd)"
    log "core.yaml and orderer.yaml from the release's config/ beside FABRIC_BIN ($dir)"
    echo "$dir"
    return 0
  fi
  dir="$(cd "$here" && go mod download -json github.com/hyperledger/fabric 2>/dev/null |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || true
  if [[ -n "$dir" ]] && has_node_config "$dir/sampleconfig"; then
    log "core.yaml and orderer.yaml from Go's module cache ($dir/sampleconfig)"
    echo "$dir/sampleconfig"
    return 0
  fi
  die "no core.yaml and orderer.yaml: set FABRIC_CFG_PATH to a directory that holds them (a \
Fabric release archive's config/), or put config/ beside FABRIC_BIN as the archive does"
}

generate() {
  local from
  mkdir -p "$NET/config" "$NET/logs"
  from="$(node_config_dir)"
  cp "$from"/{core.yaml,orderer.yaml} "$NET/config/"
  chmod u+w "$NET/config/"*.yaml
  cryptogen generate --config="$here/config/crypto-config.yaml" --output="$(crypto)" >/dev/null
  # shellcheck disable=SC2016 # envsubst is given the names to replace, unexpanded
  [[ "$BATCH_TIMEOUT" =~ ^[0-9]+(ms|s)$ ]] || die "FABRIC_BATCH_TIMEOUT must be a duration such as 200ms or 2s"
  [[ "$MAX_MESSAGE_COUNT" =~ ^[1-9][0-9]{0,4}$ ]] || die "FABRIC_MAX_MESSAGE_COUNT must be a whole number from 1 to 99999"
  env ORDERER_PORT=$ORDERER_PORT PEER1_PORT=$PEER1_PORT PEER2_PORT=$PEER2_PORT \
    BATCH_TIMEOUT=$BATCH_TIMEOUT MAX_MESSAGE_COUNT=$MAX_MESSAGE_COUNT \
    envsubst '${ORDERER_PORT} ${PEER1_PORT} ${PEER2_PORT} ${BATCH_TIMEOUT} ${MAX_MESSAGE_COUNT}' \
    <"$here/config/configtx.yaml" >"$NET/config/configtx.yaml"
  configtxgen -configPath "$NET/config" -profile HealthChannel -channelID "$CHANNEL" \
    -outputBlock "$NET/config/$CHANNEL.block" 2>"$NET/logs/configtxgen.log"
}

start_orderer() {
  local o
  o="$(orderer_dir)"
  mkdir -p "$NET/orderer"
  # Overrides of the sample orderer.yaml; TLS everywhere (Raft requires it), and the
  # operations endpoint serves /healthz and Prometheus metrics (the Raft leader gauge).
  start orderer env \
    ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 \
    ORDERER_GENERAL_LISTENPORT=$ORDERER_PORT \
    ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
    ORDERER_GENERAL_LOCALMSPDIR="$o/msp" \
    ORDERER_GENERAL_TLS_ENABLED=true \
    ORDERER_GENERAL_TLS_PRIVATEKEY="$o/tls/server.key" \
    ORDERER_GENERAL_TLS_CERTIFICATE="$o/tls/server.crt" \
    ORDERER_GENERAL_TLS_ROOTCAS="[$o/tls/ca.crt]" \
    ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE="$o/tls/server.crt" \
    ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY="$o/tls/server.key" \
    ORDERER_GENERAL_CLUSTER_ROOTCAS="[$o/tls/ca.crt]" \
    ORDERER_FILELEDGER_LOCATION="$NET/orderer/ledger" \
    ORDERER_CONSENSUS_WALDIR="$NET/orderer/etcdraft/wal" \
    ORDERER_CONSENSUS_SNAPDIR="$NET/orderer/etcdraft/snapshot" \
    ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:$ORDERER_OPS_PORT \
    ORDERER_METRICS_PROVIDER=prometheus \
    ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:$ORDERER_ADMIN_PORT \
    ORDERER_ADMIN_TLS_ENABLED=true \
    ORDERER_ADMIN_TLS_CERTIFICATE="$o/tls/server.crt" \
    ORDERER_ADMIN_TLS_PRIVATEKEY="$o/tls/server.key" \
    ORDERER_ADMIN_TLS_ROOTCAS="[$o/tls/ca.crt]" \
    ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED=true \
    ORDERER_ADMIN_TLS_CLIENTROOTCAS="[$o/tls/ca.crt]" \
    ORDERER_CHANNELPARTICIPATION_ENABLED=true \
    orderer
  wait_until $WAIT_START "the orderer's health endpoint" healthy $ORDERER_OPS_PORT
  # The admin endpoint opens after the operations one: on a slow start, osnadmin's join was
  # refused in between (connection refused on the admin port, and `up` failed).
  wait_until $WAIT_START "the orderer's admin endpoint" port_open $ORDERER_ADMIN_PORT
}

join_orderer() {
  local admin
  admin="$(crypto)/ordererOrganizations/custodia.local/users/Admin@custodia.local/tls"
  osnadmin channel join --channelID "$CHANNEL" --config-block "$NET/config/$CHANNEL.block" \
    -o "127.0.0.1:$ORDERER_ADMIN_PORT" --ca-file "$(orderer_ca)" \
    --client-cert "$admin/client.crt" --client-key "$admin/client.key" >"$NET/logs/osnadmin.log"
  # Transactions can be ordered once the single Raft node has elected itself leader.
  wait_until $WAIT_LEADER "a Raft leader on $CHANNEL" \
    metric_at_least $ORDERER_OPS_PORT "consensus_etcdraft_is_leader{channel=\"$CHANNEL\"}" 1
}

# start_peer ORG PORT CHAINCODE_PORT OPS_PORT
start_peer() {
  local org=$1 port=$2 ccport=$3 ops=$4 p
  p="$(peer_dir "$org")"
  mkdir -p "$NET/peer0.org$org"
  # Overrides of the sample core.yaml. No Docker: CORE_VM_ENDPOINT is empty and chaincode is
  # only ever reached through our chaincode-as-a-service builder. Gossip advertises the
  # loopback address so that the other org's peer (through the anchor peers in the channel
  # config) and service discovery find this one; its intervals are shortened for tests (a
  # first probe of the other peer can fail while it is still joining, and the default retry
  # is 25 s later).
  start "peer0.org$org" env \
    CORE_PEER_ID="peer0.org$org.custodia.local" \
    CORE_PEER_LISTENADDRESS=127.0.0.1:"$port" \
    CORE_PEER_ADDRESS=127.0.0.1:"$port" \
    CORE_PEER_CHAINCODELISTENADDRESS=127.0.0.1:"$ccport" \
    CORE_PEER_CHAINCODEADDRESS=127.0.0.1:"$ccport" \
    CORE_PEER_GOSSIP_BOOTSTRAP=127.0.0.1:"$port" \
    CORE_PEER_GOSSIP_EXTERNALENDPOINT=127.0.0.1:"$port" \
    CORE_PEER_GOSSIP_RECONNECTINTERVAL=2s \
    CORE_PEER_GOSSIP_MEMBERSHIPTRACKERINTERVAL=1s \
    CORE_PEER_GOSSIP_PUBLISHSTATEINFOINTERVAL=1s \
    CORE_PEER_GOSSIP_REQUESTSTATEINFOINTERVAL=1s \
    CORE_PEER_LOCALMSPID="Org${org}MSP" \
    CORE_PEER_MSPCONFIGPATH="$p/msp" \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_TLS_CERT_FILE="$p/tls/server.crt" \
    CORE_PEER_TLS_KEY_FILE="$p/tls/server.key" \
    CORE_PEER_TLS_ROOTCERT_FILE="$p/tls/ca.crt" \
    CORE_PEER_FILESYSTEMPATH="$NET/peer0.org$org/data" \
    CORE_LEDGER_SNAPSHOTS_ROOTDIR="$NET/peer0.org$org/snapshots" \
    CORE_OPERATIONS_LISTENADDRESS=127.0.0.1:"$ops" \
    CORE_METRICS_PROVIDER=prometheus \
    CORE_VM_ENDPOINT= \
    CORE_CHAINCODE_EXTERNALBUILDERS="[{name: custodia-ccaas, path: $here/builder}]" \
    peer node start
}

join_peer() {
  local org=$1
  as_admin "$org" peer channel join -b "$NET/config/$CHANNEL.block" 2>>"$NET/logs/cli.log"
}

# Packages the chaincode for the ccaas builder: metadata.json says "ccaas", and code.tar.gz
# holds only connection.json, the address of the chaincode service the peers dial.
package_chaincode() {
  local dir="$NET/chaincode"
  mkdir -p "$dir/src"
  printf '{"address":"127.0.0.1:%s","dial_timeout":"10s","tls_required":false}\n' \
    "$CHAINCODE_PORT" >"$dir/src/connection.json"
  printf '{"type":"ccaas","label":"%s"}\n' "$CC_LABEL" >"$dir/metadata.json"
  tar -C "$dir/src" -czf "$dir/code.tar.gz" connection.json
  tar -C "$dir" -czf "$dir/$CC_LABEL.tar.gz" metadata.json code.tar.gz
  peer lifecycle chaincode calculatepackageid "$dir/$CC_LABEL.tar.gz"
}

build_chaincode() {
  (cd "$root" && npm run --silent build -w @custodia/chaincode) >"$NET/logs/chaincode-build.log" 2>&1 ||
    die "building the chaincode failed; see $NET/logs/chaincode-build.log"
}

start_chaincode() {
  local package_id=$1
  # The peers dial this service; it must run the package id they installed.
  start chaincode env CORE_CHAINCODE_ID_NAME="$package_id" \
    node "$root/node_modules/fabric-shim/cli.js" server \
    --chaincode-address "127.0.0.1:$CHAINCODE_PORT" --chaincode-id "$package_id" \
    --module-path "$root/chaincode"
  wait_until $WAIT_START "the chaincode service on port $CHAINCODE_PORT" port_open $CHAINCODE_PORT
}

deploy_chaincode() {
  local package_id=$1 org
  for org in 1 2; do
    as_admin "$org" peer lifecycle chaincode install "$NET/chaincode/$CC_LABEL.tar.gz" \
      2>>"$NET/logs/cli.log"
  done
  for org in 1 2; do
    # shellcheck disable=SC2046 # the argument helpers are split on purpose
    as_admin "$org" peer lifecycle chaincode approveformyorg $(orderer_args) \
      --channelID "$CHANNEL" --name "$CC_NAME" --version "$CC_VERSION" \
      --sequence "$CC_SEQUENCE" --package-id "$package_id" 2>>"$NET/logs/cli.log"
  done
  # shellcheck disable=SC2046
  as_admin 1 peer lifecycle chaincode commit $(orderer_args) $(both_peers_args) \
    --channelID "$CHANNEL" --name "$CC_NAME" --version "$CC_VERSION" \
    --sequence "$CC_SEQUENCE" 2>>"$NET/logs/cli.log"
}

# Grants a consent through both peers and reads it back: the chaincode service answers,
# endorsement by both orgs works and the transaction commits.
smoke_test() {
  local id grant answer
  id="smoke-$(date +%s%N)"
  # A grantee that no API user is, so that the grant shows up in nobody's listing.
  grant="{\"id\":\"$id\",\"patientId\":\"network-smoke-test\",\"grantee\":{\"type\":\"CLINICIAN\",\"id\":\"network-smoke-test\"},\"purpose\":\"TREATMENT\",\"actions\":[\"READ\"],\"resourceTypes\":[],\"categories\":[]}"
  # shellcheck disable=SC2046
  as_admin 1 peer chaincode invoke $(orderer_args) $(both_peers_args) -C "$CHANNEL" -n "$CC_NAME" \
    --waitForEvent -c "$(jq -cn --arg g "$grant" '{Args: ["consent:GrantConsent", $g]}')" \
    2>>"$NET/logs/cli.log"
  for org in 1 2; do
    answer="$(as_admin "$org" peer chaincode query -C "$CHANNEL" -n "$CC_NAME" \
      -c "{\"Args\":[\"consent:GetConsent\",\"$id\"]}" 2>>"$NET/logs/cli.log")"
    grep -q "\"status\":\"ACTIVE\"" <<<"$answer" || die "smoke test: org$org read back $answer"
  done
  log "smoke test passed: consent:GrantConsent committed, consent:GetConsent reads it on both peers"
}

# Gateways endorse through service discovery, which knows the other org's peer (and the
# chaincode it runs) only once gossip has spread membership and state info.
wait_for_gossip() { # [ORG...], both by default
  local org ops orgs=("$@")
  ((${#orgs[@]})) || orgs=(1 2)
  for org in "${orgs[@]}"; do
    ops=$PEER1_OPS_PORT
    [[ $org == 2 ]] && ops=$PEER2_OPS_PORT
    wait_until $WAIT_GOSSIP "peer0.org$org to learn the other org's peer through gossip" \
      metric_at_least "$ops" "gossip_membership_total_peers_known{channel=\"$CHANNEL\"}" 1
  done
}

write_env() {
  local user user2 keys1 keys2
  user="$(org_dir 1)/users/User1@org1.custodia.local/msp"
  user2="$(org_dir 2)/users/User1@org2.custodia.local/msp"
  # cryptogen writes one key per keystore (priv_sk).
  keys1=("$user"/keystore/*)
  keys2=("$user2"/keystore/*)
  cat >"$NET/fabric.env" <<EOF
LEDGER=fabric
FABRIC_PEER_ENDPOINT=127.0.0.1:$PEER1_PORT
FABRIC_PEER_HOST_ALIAS=peer0.org1.custodia.local
FABRIC_TLS_CA=$(peer_ca 1)
FABRIC_MSP_ID=Org1MSP
FABRIC_CERT=$user/signcerts/User1@org1.custodia.local-cert.pem
FABRIC_KEY=${keys1[0]}
FABRIC_CHANNEL=$CHANNEL
FABRIC_CHAINCODE=$CC_NAME
FABRIC_ORG2_PEER_ENDPOINT=127.0.0.1:$PEER2_PORT
FABRIC_ORG2_TLS_CA=$(peer_ca 2)
FABRIC_ORG2_CERT=$user2/signcerts/User1@org2.custodia.local-cert.pem
FABRIC_ORG2_KEY=${keys2[0]}
FABRIC_NETWORK_DIR=$NET
FABRIC_NETWORK_BATCH_TIMEOUT=$BATCH_TIMEOUT
FABRIC_NETWORK_MAX_MESSAGE_COUNT=$MAX_MESSAGE_COUNT
EOF
}

# The EXIT trap of a failed `up`: the last lines of each log, then `down`, whatever state the
# network got to (never failing itself, or `down` would not run).
up_failed() {
  set +e
  log "up failed; the last lines of its logs:"
  if compgen -G "$NET/logs/*.log" >/dev/null; then tail -n 5 "$NET"/logs/*.log >&2; fi
  down
}

up() {
  if [[ -f "$state_file" ]]; then
    local old
    old="$(cat "$state_file")"
    if [[ -f "$old/ready" ]] && healthy $PEER1_OPS_PORT && healthy $PEER2_OPS_PORT; then
      log "already up in $old"
      cat "$old/fabric.env"
      return 0
    fi
    log "cleaning up a previous network that is not healthy"
    down
  fi
  "$here/build.sh"
  local port
  for port in $ORDERER_PORT $ORDERER_ADMIN_PORT $ORDERER_OPS_PORT $PEER1_PORT $PEER1_CC_PORT \
    $PEER1_OPS_PORT $PEER2_PORT $PEER2_CC_PORT $PEER2_OPS_PORT $CHAINCODE_PORT; do
    port_open "$port" && die "port $port on 127.0.0.1 is in use; is another network running?"
  done

  NET="$(mktemp -d "${TMPDIR:-/tmp}/custodia-fabric.XXXXXX")"
  echo "$NET" >"$state_file"
  # Every process started from here on carries this marker, which `down` checks before it
  # signals a recorded pid.
  export CUSTODIA_FABRIC_NET="$NET" FABRIC_CFG_PATH="$NET/config"
  # Any failure or interruption from here on tears down what was started (set -e and die exit;
  # the EXIT trap sees that `up` did not finish). The flag is global: after a failing command
  # under set -e, bash runs the trap once the functions have returned, where a local of `up`
  # no longer exists (and set -u would abort the trap before `down`).
  up_finished=
  trap 'if [[ -z ${up_finished:-} ]]; then up_failed; fi' EXIT
  trap 'log "interrupted"; exit 130' INT TERM
  local t0=$SECONDS

  generate
  start_orderer
  join_orderer
  log "orderer up, Raft leader elected on $CHANNEL ($((SECONDS - t0)) s)"
  start_peer 1 $PEER1_PORT $PEER1_CC_PORT $PEER1_OPS_PORT
  start_peer 2 $PEER2_PORT $PEER2_CC_PORT $PEER2_OPS_PORT
  wait_until $WAIT_START "peer0.org1's health endpoint" healthy $PEER1_OPS_PORT
  wait_until $WAIT_START "peer0.org2's health endpoint" healthy $PEER2_OPS_PORT
  # As with the orderer, the peer's own endpoint opens after its operations one: on a slow
  # start the channel join was refused in between.
  wait_until $WAIT_START "peer0.org1's endpoint" port_open $PEER1_PORT
  wait_until $WAIT_START "peer0.org2's endpoint" port_open $PEER2_PORT
  join_peer 1
  join_peer 2
  log "peers joined $CHANNEL ($((SECONDS - t0)) s)"

  local package_id
  package_id="$(package_chaincode)"
  echo "$package_id" >"$NET/package_id"
  build_chaincode
  start_chaincode "$package_id"
  deploy_chaincode "$package_id"
  log "chaincode $CC_NAME committed, package $package_id ($((SECONDS - t0)) s)"
  smoke_test
  wait_for_gossip
  write_env
  touch "$NET/ready"
  up_finished=1
  trap - EXIT INT TERM

  log "network up in $((SECONDS - t0)) s, directory $NET"
  log "  orderer      127.0.0.1:$ORDERER_PORT (admin $ORDERER_ADMIN_PORT, ops $ORDERER_OPS_PORT)"
  log "  peer0.org1   127.0.0.1:$PEER1_PORT (ops $PEER1_OPS_PORT)  hospital, Org1MSP"
  log "  peer0.org2   127.0.0.1:$PEER2_PORT (ops $PEER2_OPS_PORT)  research, Org2MSP"
  log "  chaincode    127.0.0.1:$CHAINCODE_PORT ($package_id)"
  log "adapter environment (also: $0 env):"
  cat "$NET/fabric.env"
}

# --- down, status, env ----------------------------------------------------------------------

down() {
  if [[ ! -f "$state_file" ]]; then
    log "no network to stop"
    return 0
  fi
  local dir
  dir="$(cat "$state_file")"
  stop_all "$dir"
  # Only ever delete a directory that `up` created.
  [[ "$(basename "$dir")" == custodia-fabric.* ]] && rm -rf "$dir"
  rm -f "$state_file"
  log "network down"
}

# Makes the running network's directory and markers current, for commands after `up`.
load_state() {
  [[ -f "$state_file" && -f "$(cat "$state_file")/ready" ]] || die "the network is not up"
  NET="$(cat "$state_file")"
  export CUSTODIA_FABRIC_NET="$NET" FABRIC_CFG_PATH="$NET/config"
}

readonly NODES="orderer peer0.org1 peer0.org2 chaincode"

stop_node() {
  local name=$1 pid deadline
  load_state
  pid="$(awk -v n="$name" '$2 == n { p = $1 } END { print p }' "$NET/pids")"
  if [[ -z "$pid" ]] || ! ours "$pid" "$NET"; then
    log "$name is not running"
    return 0
  fi
  kill -TERM "$pid"
  deadline=$((SECONDS + 10))
  while ours "$pid" "$NET" && ((SECONDS < deadline)); do sleep 0.1; done
  if ours "$pid" "$NET"; then kill -KILL "$pid" 2>/dev/null || true; fi
  log "stopped $name (pid $pid)"
}

start_node() {
  local name=$1 pid
  load_state
  pid="$(awk -v n="$name" '$2 == n { p = $1 } END { print p }' "$NET/pids")"
  if [[ -n "$pid" ]] && ours "$pid" "$NET"; then
    log "$name is already running (pid $pid)"
    return 0
  fi
  case "$name" in
    orderer)
      start_orderer
      wait_until $WAIT_LEADER "a Raft leader on $CHANNEL" metric_at_least $ORDERER_OPS_PORT \
        "consensus_etcdraft_is_leader{channel=\"$CHANNEL\"}" 1
      ;;
    peer0.org1 | peer0.org2)
      local org=${name#peer0.org} ops=$PEER1_OPS_PORT port=$PEER1_PORT cc=$PEER1_CC_PORT
      [[ $org == 2 ]] && ops=$PEER2_OPS_PORT port=$PEER2_PORT cc=$PEER2_CC_PORT
      start_peer "$org" "$port" "$cc" "$ops"
      wait_until $WAIT_START "$name's health endpoint" healthy "$ops"
      wait_until $WAIT_START "$name's endpoint" port_open "$port"
      wait_for_gossip "$org"
      ;;
    chaincode) start_chaincode "$(cat "$NET/package_id")" ;;
  esac
}

status() {
  if [[ -f "$state_file" && -f "$(cat "$state_file")/ready" ]]; then
    local dir
    dir="$(cat "$state_file")"
    if healthy $ORDERER_OPS_PORT && healthy $PEER1_OPS_PORT && healthy $PEER2_OPS_PORT; then
      log "up in $dir"
      return 0
    fi
    log "started in $dir but not healthy"
    return 1
  fi
  log "down"
  return 3
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env)
    [[ -f "$state_file" ]] || die "the network is not up"
    cat "$(cat "$state_file")/fabric.env"
    ;;
  stop | start)
    [[ " $NODES " == *" ${2:-} "* ]] || die "usage: $0 $1 orderer|peer0.org1|peer0.org2|chaincode"
    "${1}_node" "$2"
    ;;
  *)
    echo "usage: $0 up|down|status|env|stop NODE|start NODE" >&2
    exit 2
    ;;
esac
