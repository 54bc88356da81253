#!/bin/sh
# Turn Docker secrets into changefeed settings, then run the command.
#
# For each CHANGEFEED_<NAME>_FILE=<path>, export CHANGEFEED_<NAME> with the file's content and
# unset the _FILE variable (the settings object forbids unknown keys). Passwords thus live in
# secret files, never in the compose file or `docker inspect` output.
set -eu
for file_var in $(env | sed -n 's/^\(CHANGEFEED_[A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
    eval "path=\${${file_var}_FILE}"
    value=$(cat "$path")
    export "$file_var=$value"
    unset "${file_var}_FILE"
done
exec "$@"
