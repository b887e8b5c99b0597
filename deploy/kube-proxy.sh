#!/bin/sh
# /usr/local/bin/kube-proxy in the image: the path upstream's DaemonSet command uses, so swapping
# the image is enough. Runs the built CLI on the image's own Node 24 (/usr/local/bin/node); the
# pinned `node` npm package is a devDependency and is not in the image.
exec /usr/local/bin/node --enable-source-maps --max-semi-space-size=4 /opt/kube-proxy-ts/dist/cli/main.js "$@"
