;; start_spin: a start function that never returns. It must pay from the
;; job's fuel like _start does, so --fuel stops it.
(module
  (memory (export "memory") 1)
  (func $spin (loop $forever (br $forever)))
  (start $spin)
  (func (export "_start")))
