{
  "targets": [{
    "target_name": "fuse_ll",
    "sources": ["fuse_ll.c"],
    "include_dirs": ["<!(node -e \"require('fuse-shared-library/include')\")"],
    "libraries": ["<!(node -e \"require('fuse-shared-library/lib')\")", "-lpthread"],
    "cflags": ["-O2", "-Wall", "-Werror", "-D_FILE_OFFSET_BITS=64"]
  }]
}
