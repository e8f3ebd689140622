// POSIX behaviour through the default low-level FUSE binding (posix-suite.ts).
import t from 'tap'
import { posixSuite } from './posix-suite.js'

posixSuite(t, '')
