#!/bin/sh
# The container's entry: run one process of the Procfile by name, with the same
# command `honcho start` runs (so the image and the Procfile never differ).
#   entrypoint.sh web | webhooks | money | sync | cron    run that process
#   entrypoint.sh --print NAME                            print its command, run nothing
#   entrypoint.sh flask …  (any other command)            run it as given
set -eu
cd "$(dirname "$0")/.."
print_only=""
if [ "${1:-}" = "--print" ]; then
    print_only=1
    shift
fi
name="${1:-web}"
command=$(sed -n "s/^${name}: //p" Procfile)
if [ -z "$command" ]; then
    if [ -n "$print_only" ]; then
        echo "no process named $name in the Procfile" >&2
        exit 2
    fi
    exec "$@"
fi
if [ -n "$print_only" ]; then
    printf '%s\n' "$command"
    exit 0
fi
exec sh -c "$command"
