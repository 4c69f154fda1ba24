;; atomic_wait: waits on its own shared memory forever. No other thread can
;; wake it, so Phase refuses the instruction before the module runs.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "_start")
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))))
