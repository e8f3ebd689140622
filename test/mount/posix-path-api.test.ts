// POSIX behaviour through fuse-native's path API, still a mount option (posix-suite.ts).
import t from 'tap'
import { posixSuite } from './posix-suite.js'

posixSuite(t, 'fuse_api=path')
