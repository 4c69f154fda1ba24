;; echo_both: copies standard input to standard output and to standard error,
;; 64 KiB at a time, then exits 0 (for tests of large outputs on both streams).
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; iovec at 0: buffer at 1024, length 65536; counts at 16 and 20.
  (func (export "_start")
    (local $n i32)
    (loop $more
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 65536))
      (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
      (local.set $n (i32.load (i32.const 16)))
      (if (local.get $n)
        (then
          (i32.store (i32.const 4) (local.get $n))
          (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))
          (i32.store (i32.const 4) (local.get $n))
          (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 20)))
          (br $more))))))
