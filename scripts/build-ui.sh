#!/bin/sh
# Build the web app into src/vesalius/web/ui/dist when it is missing or older than its sources.
#   npm ci     when web/node_modules is missing or older than web/package-lock.json
#   vite build when the dist is missing or any source is newer than dist/index.html
# Then gzip copies of the text assets (served to browsers that accept gzip).
set -eu
cd "$(dirname "$0")/.."

WEB=web
DIST=src/vesalius/web/ui/dist
STAMP="$WEB/node_modules/.package-lock.json"   # written by npm ci / npm install

if ! command -v npm >/dev/null 2>&1; then
    if [ -f "$DIST/index.html" ]; then
        echo "build-ui: npm not found; serving the existing build in $DIST" >&2
        exit 0
    fi
    echo "build-ui: npm (Node.js 20+) is needed to build the web app" >&2
    exit 1
fi

if [ ! -f "$STAMP" ] || [ "$WEB/package-lock.json" -nt "$STAMP" ] || [ "$WEB/package.json" -nt "$STAMP" ]; then
    echo "build-ui: installing the web app's packages (npm ci)"
    npm ci --prefix "$WEB" --no-audit --no-fund --silent
fi

stale=0
if [ ! -f "$DIST/index.html" ]; then
    stale=1
elif [ -n "$(find "$WEB/src" "$WEB/index.html" "$WEB/package-lock.json" "$WEB/vite.config.ts" \
             "$WEB/tsconfig.json" $( [ -d "$WEB/public" ] && echo "$WEB/public" ) \
             -newer "$DIST/index.html" -print 2>/dev/null | head -n 1)" ]; then
    stale=1
fi

if [ "$stale" = 1 ]; then
    echo "build-ui: building the web app into $DIST"
    npm run build --prefix "$WEB" --silent
    find "$DIST" -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.css' -o -name '*.wasm' \
         -o -name '*.json' -o -name '*.svg' -o -name '*.map' \) -size +1k \
         -exec gzip -9 -k -f -n {} \;
    # gzip kept each file's time; make index.html the newest so the next check sees it built.
    touch "$DIST/index.html"
fi
