/**
 * Membership arithmetic: quorum sizes, applying one change step, and the
 * rule that decides whether a change step is allowed at all.
 */
import type { Config, ConfChange, NodeId } from './types.js'

export function quorum (c: Config): number {
  return Math.floor(c.voters.length / 2) + 1
}

export function isVoter (c: Config, id: NodeId): boolean {
  return c.voters.includes(id)
}

export function isMember (c: Config, id: NodeId): boolean {
  return c.voters.includes(id) || c.learners.includes(id)
}

export function members (c: Config): NodeId[] {
  return [...c.voters, ...c.learners]
}

export function cloneConfig (c: Config): Config {
  return { voters: [...c.voters], learners: [...c.learners] }
}

/** Returns an error message when `cc` is not a valid single step from `c`. */
export function checkChange (c: Config, cc: ConfChange): string | undefined {
  switch (cc.type) {
    case 'addLearner':
      if (isMember(c, cc.node)) return `node ${cc.node} is already a member`
      return undefined
    case 'promote':
      if (!c.learners.includes(cc.node)) return `node ${cc.node} is not a learner; add it as a learner first`
      return undefined
    case 'remove':
      if (!isMember(c, cc.node)) return `node ${cc.node} is not a member`
      if (c.voters.length === 1 && c.voters[0] === cc.node) return 'cannot remove the last voter'
      return undefined
  }
}

export function applyChange (c: Config, cc: ConfChange): Config {
  const out = cloneConfig(c)
  switch (cc.type) {
    case 'addLearner':
      out.learners.push(cc.node)
      break
    case 'promote':
      out.learners = out.learners.filter((n) => n !== cc.node)
      out.voters.push(cc.node)
      break
    case 'remove':
      out.learners = out.learners.filter((n) => n !== cc.node)
      out.voters = out.voters.filter((n) => n !== cc.node)
      break
  }
  out.voters.sort((a, b) => a - b)
  out.learners.sort((a, b) => a - b)
  return out
}
