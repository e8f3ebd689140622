{
  "targets": [
    { "target_name": "tcp_tune", "sources": ["tcp_tune.c"] }
  ]
}
