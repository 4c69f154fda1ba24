;; tiny_writes: 2,000,000 fd_write calls of one byte each to stdout. Output
;; past the limit is dropped; what is kept must cost host memory in
;; proportion to the bytes kept, not to the number of writes.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: buffer 16, length 1; the byte at 16 is "x"
  (data (i32.const 0) "\10\00\00\00\01\00\00\00")
  (data (i32.const 16) "x")
  (func (export "_start")
    (local $i i32)
    (local.set $i (i32.const 2000000))
    (loop $again
      (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.tee $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $again))))
