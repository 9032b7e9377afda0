{
  "targets": [
    {
      "target_name": "rig_native",
      "sources": ["src/addon.c", "src/original-dst.c", "src/resident-pages.c", "src/tcp-keepalive.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
