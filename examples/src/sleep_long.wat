;; sleep_long: blocks in one poll_oneoff call on a 600-second monotonic
;; clock, so its sandbox sits inside a host call (not spinning) for the
;; orphan tests.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; subscription at 0: userdata 0, tag 0 (clock), clock id 1 (monotonic) at
  ;; 16, timeout 600e9 ns at 24, precision 0, flags 0 (relative)
  (data (i32.const 16) "\01\00\00\00\00\00\00\00\00\70\c9\b2\8b\00\00\00")
  (func (export "_start")
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
