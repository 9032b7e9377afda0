{
  "targets": [
    {
      "target_name": "rig_native",
      "sources": ["src/original-dst.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
