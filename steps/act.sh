#!/bin/sh
# The example target's steps: each acts out one step of Flickr's 2009 stage and deploy
# (exporting, precompiling, syncing to the ramdisks, the three deploy stages) in a moment,
# printing what a real step would. Replace these with your own programs in bot.toml.
#   act.sh <step> <target>
set -eu
step="$1"
target="${2:-site}"
say() { printf '%s\n' "$*"; }

case "$step" in
  export)      say "exporting $target from svn (run ${LEVER_RUN_ID:-?} by ${LEVER_USER:-?})"; sleep 0.3; say "exported 1826 files" ;;
  versions)    say "fetching versions"; sleep 0.2 ;;
  precompile)  say "precompiling templates"; sleep 0.6; say "compiled 4211 templates" ;;
  strings)     say "sync strings"; sleep 0.2; say "added: 14"; say "deleted: 1" ;;
  push)        say "push to staging"; sleep 0.3 ;;
  pull)        say "pulling $target ${LEVER_VERSION:-} from staging host"; sleep 0.3 ;;
  ramdisk)     say "syncing to ramdisk in ${3:-mud}"; sleep 0.3 ;;
  stage)       say "stage ${3:-1}: waiting for 151 hosts"; sleep 0.4; say "stage ${3:-1}: 151 hosts ok" ;;
  revert)      say "switching $target back to ${LEVER_VERSION:-?}"; sleep 0.3 ;;
  *)           say "unknown step: $step" >&2; exit 2 ;;
esac
