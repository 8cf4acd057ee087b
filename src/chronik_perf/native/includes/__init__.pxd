# C declarations of the native core, cimported by the parts that use them (as uvloop's includes/ are).
