#!/bin/sh
# Prints the version of a fresh stage. A real target would print e.g. `git rev-parse --short HEAD`;
# the example makes up an svn-style revision from the clock.
echo "r$(date +%s | tail -c 6)"
