#!/usr/bin/env bash
# Installs Lanterne on a Debian 12 server, as root, from this repository
# checkout. Idempotent: run it again after `git pull` to upgrade.
#
#   sudo deploy/install.sh
#
# What it does (deploy/README.md explains each step):
#   1. apt: tor, python3-venv, libpq5 (only what is missing);
#   2. the app into a virtualenv (/opt/lanterne/venv), pinned by constraints.txt;
#   3. the system user `lanterne` and its data directory (0700), `init`;
#   4. tor: the source onion in tor@default (/etc/tor/torrc), the journalist
#      onion in the instance tor@lanternejournalist, both torrcs verified;
#   5. the systemd unit lanterne.service and the daily digest's timer
#      (lanterne-digest.timer); enables and (re)starts everything,
#      or, where systemd is not PID 1, prints what it would start.
#
# Every path can be overridden, so a test can install under a scratch root:
#   LANTERNE_PREFIX=/tmp/root   every path, and every path written into the
#                               torrcs and the unit, goes under it (user
#                               accounts are still the system's; the prefix
#                               must be traversable: mode 0755)
#   LANTERNE_SRC, LANTERNE_VENV, LANTERNE_DATA_DIR, LANTERNE_USER, LANTERNE_PYTHON,
#   LANTERNE_SOURCE_PORT, LANTERNE_JOURNALIST_PORT
#   LANTERNE_SKIP_APT=1         do not call apt-get (packages already there)
#   LANTERNE_SKIP_PIP=1         keep the venv as it is (already installed)
#   LANTERNE_NO_START=1         install the units but start nothing
set -euo pipefail
umask 022

src="${LANTERNE_SRC:-$(cd "$(dirname "$0")/.." && pwd)}"
prefix="${LANTERNE_PREFIX:-}"
prefix="${prefix%/}"
venv="${LANTERNE_VENV:-/opt/lanterne/venv}"
data_dir="${LANTERNE_DATA_DIR:-/var/lib/lanterne}"
app_user="${LANTERNE_USER:-lanterne}"
source_port="${LANTERNE_SOURCE_PORT:-8080}"
journalist_port="${LANTERNE_JOURNALIST_PORT:-8081}"
# Debian's Python, not whatever `python3` is first on root's PATH (pyenv and
# the like live in /root, where the service user cannot reach them).
python="${LANTERNE_PYTHON:-/usr/bin/python3}"
# Names and places as server/ops/tor_config.py's DebianLayout has them.
instance="lanternejournalist"
instance_user="_tor-$instance"
source_hs="$prefix/var/lib/tor/lanterne-source"
instance_home="$prefix/var/lib/tor-instances/$instance"
journalist_hs="$instance_home/journalist-api"
source_torrc="$prefix/etc/tor/torrc"
journalist_torrc="$prefix/etc/tor/instances/$instance/torrc"
unit_dir="$prefix/etc/systemd/system"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo $0)"
# Paths end up in torrcs and in sed expressions: plain characters only.
for p in "$src" "$prefix" "$venv" "$data_dir"; do
  [[ -z "$p" || "$p" =~ ^/[A-Za-z0-9._/@+-]*$ ]] || die "unsupported path: '$p'"
done
[[ "$source_port" =~ ^[0-9]+$ && "$journalist_port" =~ ^[0-9]+$ ]] || die "ports must be numbers"
[[ "$app_user" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "bad user name: $app_user"
if [ ! -f "$src/pyproject.toml" ] || [ ! -f "$src/deploy/torrc.source.tmpl" ]; then
  die "$src is not a Lanterne checkout (set LANTERNE_SRC)"
fi
grep -q '^12\.' /etc/debian_version 2>/dev/null \
  || say "warning: written for Debian 12, this is $(cat /etc/debian_version 2>/dev/null || echo 'not Debian')"

# --- 1. Debian packages --------------------------------------------------------
# tor ships tor-gencert too (only tests need it); python3-venv for the venv;
# libpq5 for psycopg, loaded only when config.toml names [database]
# (docs/SCALE_OUT.md: Debian's libpq gets Debian's security updates).
debs=(tor python3 python3-venv libpq5)
if [ "${LANTERNE_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi
command -v tor >/dev/null || die "tor is not installed"
getent passwd debian-tor >/dev/null || die "user debian-tor missing: is Debian's tor package installed?"

# --- 2. the app ------------------------------------------------------------------
# Owned by root and read-only to the service: a compromised app cannot change
# its own code. Installed from a copy of the checkout, not editable.
venv_path="$prefix$venv"
if [ ! -x "$venv_path/bin/python" ]; then
  say "creating $venv_path with $python"
  install -d -m 0755 "$(dirname "$venv_path")"
  "$python" -m venv "$venv_path"
fi
if [ "${LANTERNE_SKIP_PIP:-0}" != 1 ]; then
  say "installing the app into $venv_path"
  "$venv_path/bin/python" -m pip install -q --upgrade pip
  "$venv_path/bin/python" -m pip install -q --no-cache-dir -c "$src/constraints.txt" "$src"
fi
py="$venv_path/bin/python"
server="$venv_path/bin/lanterne-server"
[ -x "$server" ] || die "$server missing after install"
# On root's PATH, as deploy/README.md types it (admin commands run as root).
install -d -m 0755 "$prefix/usr/local/sbin"
ln -sfn "$server" "$prefix/usr/local/sbin/lanterne-server"

# --- 3. user and data directory --------------------------------------------------
if ! getent passwd "$app_user" >/dev/null; then
  say "creating system user $app_user"
  adduser --quiet --system --group --no-create-home --home "$data_dir" \
    --shell /usr/sbin/nologin "$app_user"
fi
install -d -m 0700 -o "$app_user" -g "$app_user" "$prefix$data_dir"
chmod 0700 "$prefix$data_dir"  # also when it existed with looser rights
# init is idempotent: it creates what is missing and keeps what exists.
(umask 077 && runuser -u "$app_user" -- "$server" init --data-dir "$prefix$data_dir" >/dev/null)

# --- 4. tor ------------------------------------------------------------------------
# The journalist instance, as Debian's tor-instance-create makes one (done here
# so that LANTERNE_PREFIX applies): its own system user and data directory.
if ! getent passwd "$instance_user" >/dev/null; then
  say "creating system user $instance_user (tor instance $instance)"
  adduser --quiet --system --disabled-password --home "/var/lib/tor-instances/$instance" \
    --no-create-home --shell /bin/false --group --force-badname "$instance_user"
fi
install -d -m 0755 "$prefix/var/lib/tor-instances" "$prefix/etc/tor/instances/$instance"
install -d -m 02700 -o "$instance_user" -g "$instance_user" "$instance_home"
# tor refuses a HiddenServiceDir readable by others; authorized_clients/ holds
# one <name>.auth per journalist (written by the admin commands, as root).
install -d -m 0700 -o "$instance_user" -g "$instance_user" "$journalist_hs" "$journalist_hs/authorized_clients"
install -d -m 0700 -o debian-tor -g debian-tor "$prefix/var/lib/tor" "$source_hs"
chmod 0700 "$source_hs" "$journalist_hs" "$journalist_hs/authorized_clients"

render() {  # render TEMPLATE HS_DIR PORT DEST: write atomically, keep a pre-Lanterne original
  local tmp
  tmp="$(mktemp "$4.XXXXXX")"
  "$py" -m server.ops.tor_config render --template "$1" --hs-dir "$2" --port "$3" >"$tmp" \
    || { rm -f "$tmp"; die "cannot render $1"; }
  chmod 0644 "$tmp"
  if [ -f "$4" ] && ! grep -q '^## Lanterne' "$4" && [ ! -e "$4.before-lanterne" ]; then
    cp -p "$4" "$4.before-lanterne"
  fi
  mv -f "$tmp" "$4"
}
install -d -m 0755 "$prefix/etc/tor"
render "$src/deploy/torrc.source.tmpl" "$source_hs" "$source_port" "$source_torrc"
render "$src/deploy/torrc.journalist.tmpl" "$journalist_hs" "$journalist_port" "$journalist_torrc"

# Verify each torrc as its unit will read it (defaults file included), so a
# bad torrc stops the install here rather than tor at the next restart.
verify_dir="$(mktemp -d)"
trap 'rm -rf "$verify_dir"' EXIT
sed -e "s/@@NAME@@/$instance/g" /usr/share/tor/tor-service-defaults-torrc-instances \
  >"$verify_dir/instance.defaults"
tor --verify-config --defaults-torrc /usr/share/tor/tor-service-defaults-torrc \
  -f "$source_torrc" >"$verify_dir/source.log" 2>&1 \
  || { cat "$verify_dir/source.log" >&2; die "$source_torrc does not verify"; }
tor --verify-config --defaults-torrc "$verify_dir/instance.defaults" \
  -f "$journalist_torrc" >"$verify_dir/journalist.log" 2>&1 \
  || { cat "$verify_dir/journalist.log" >&2; die "$journalist_torrc does not verify"; }
say "torrcs verified: $source_torrc, $journalist_torrc"

# --- 5. systemd ---------------------------------------------------------------------
install -d -m 0755 "$unit_dir"
sed -e "s#/opt/lanterne/venv#$prefix$venv#g; s#/var/lib/lanterne#$prefix$data_dir#g" \
  -e "s#--port 8080#--port $source_port#; s#--journalist-port 8081#--journalist-port $journalist_port#" \
  -e "s#^User=lanterne\$#User=$app_user#; s#^Group=lanterne\$#Group=$app_user#" \
  "$src/deploy/lanterne.service" >"$unit_dir/lanterne.service.tmp"
chmod 0644 "$unit_dir/lanterne.service.tmp"
mv -f "$unit_dir/lanterne.service.tmp" "$unit_dir/lanterne.service"
# The daily retention sweep (docs/OFFICIAL_CHANNEL.md); it does nothing while
# [channel] retention_days is off.
for unit in lanterne-expire.service lanterne-expire.timer; do
  sed -e "s#/opt/lanterne/venv#$prefix$venv#g; s#/var/lib/lanterne#$prefix$data_dir#g" \
    -e "s#^User=lanterne\$#User=$app_user#; s#^Group=lanterne\$#Group=$app_user#" \
    "$src/deploy/$unit" >"$unit_dir/$unit.tmp"
  chmod 0644 "$unit_dir/$unit.tmp"
  mv -f "$unit_dir/$unit.tmp" "$unit_dir/$unit"
done

# The daily digest (deploy/README.md, "The daily digest"): its service, its
# timer (every day at a fixed time), and the 0600 file for the relay's password.
for unit in lanterne-digest.service lanterne-digest.timer; do
  sed -e "s#/opt/lanterne/venv#$prefix$venv#g; s#/var/lib/lanterne#$prefix$data_dir#g" \
    -e "s#/etc/lanterne/digest.env#$prefix/etc/lanterne/digest.env#" \
    -e "s#^User=lanterne\$#User=$app_user#; s#^Group=lanterne\$#Group=$app_user#" \
    "$src/deploy/$unit" >"$unit_dir/$unit.tmp"
  chmod 0644 "$unit_dir/$unit.tmp"
  mv -f "$unit_dir/$unit.tmp" "$unit_dir/$unit"
done
install -d -m 0700 "$prefix/etc/lanterne"
if [ ! -e "$prefix/etc/lanterne/digest.env" ]; then
  (umask 077; printf '# LANTERNE_SMTP_PASSWORD=...\n' >"$prefix/etc/lanterne/digest.env")
fi

# The data directory bound onto itself with noatime (deploy/README.md section 9),
# unless it is a mount point of its own (an encrypted volume): then fstab says.
units=(tor.service lanterne.service lanterne-expire.timer)
data_mount=""
if [ "$(findmnt -n -o TARGET --target "$prefix$data_dir" 2>/dev/null)" = "$prefix$data_dir" ]; then
  findmnt -n -o OPTIONS --target "$prefix$data_dir" | grep -qw noatime \
    || say "warning: $prefix$data_dir is a mount point without noatime: add noatime to its fstab line"
else
  # systemd names a mount unit after its path (systemd-escape -p --suffix=mount).
  data_mount="$("$py" -c 'import sys
p = sys.argv[1].strip("/")
print("".join(c if c.isalnum() or c in ":_." and not (i == 0 and c == ".") else
      "-" if c == "/" else "\\x%02x" % ord(c) for i, c in enumerate(p)) + ".mount")' \
    "$prefix$data_dir")"
  sed -e "s#/var/lib/lanterne#$prefix$data_dir#g" "$src/deploy/lanterne-data.mount" \
    >"$unit_dir/$data_mount.tmp"
  chmod 0644 "$unit_dir/$data_mount.tmp"
  mv -f "$unit_dir/$data_mount.tmp" "$unit_dir/$data_mount"
  units=(tor.service "$data_mount" lanterne.service lanterne-expire.timer)
fi

# tor.service starts tor@default and every instance under /etc/tor/instances
# (Debian's tor-generator); restarting it restarts them (PartOf=).
if [ -z "$prefix" ] && [ -d /run/systemd/system ] && [ "${LANTERNE_NO_START:-0}" != 1 ]; then
  systemctl daemon-reload
  systemctl enable "${units[@]}"
  [ -z "$data_mount" ] || systemctl start "$data_mount"
  systemctl restart tor.service
  systemctl restart lanterne.service
  systemctl enable --now lanterne-digest.timer
  systemctl start lanterne-expire.timer
  for hs in "$source_hs" "$journalist_hs"; do
    for _ in $(seq 60); do [ -s "$hs/hostname" ] && break; sleep 1; done
  done
  say "source interface:  http://$("$py" -m server.ops.tor_config hostname "$source_hs")/"
  say "journalist API:    http://$("$py" -m server.ops.tor_config hostname "$journalist_hs")/ (client authorisation)"
else
  say "systemd is not running here (or LANTERNE_NO_START/LANTERNE_PREFIX is set): nothing started."
  say "units installed in $unit_dir; on a systemd host this would run:"
  say "  systemctl daemon-reload"
  say "  systemctl enable ${units[*]}"
  [ -z "$data_mount" ] || say "  systemctl start $data_mount    # or: mount --bind -o noatime $prefix$data_dir $prefix$data_dir"
  say "  systemctl restart tor.service    # tor@default and tor@$instance"
  say "  systemctl restart lanterne.service"
  say "  systemctl enable --now lanterne-digest.timer    # after [smtp] in config.toml"
  say "the app, as the unit runs it: runuser -u $app_user -- $server run --data-dir $prefix$data_dir --host 127.0.0.1 --port $source_port --journalist-port $journalist_port"
fi
say "check the deployment: lanterne-server check --data-dir $prefix$data_dir${prefix:+ --layout-prefix $prefix}"
say "done"
