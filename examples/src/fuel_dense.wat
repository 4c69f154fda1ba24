;; fuel_dense: a loop whose body is 1,000 instructions the compiler removes
;; (500 pairs of i32.const and drop), so it burns fuel about as fast as any
;; code can: the bench measures its rate to derive the default fuel budget.
;; Generated: 500 repeats of the same pair.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      i32.const 0
      drop
      br $forever)))
