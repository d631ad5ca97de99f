import { randomInt } from 'node:crypto';

// Docker-style generated names (adjective_surname). Lists are ours; the shape is Docker's.
const ADJECTIVES = [
  'admiring', 'agile', 'amazing', 'bold', 'brave', 'busy', 'calm', 'clever', 'cool', 'crisp', 'daring', 'eager',
  'elated', 'epic', 'fervent', 'focused', 'gallant', 'gentle', 'happy', 'hopeful', 'jolly', 'keen', 'kind', 'lucid',
  'merry', 'modest', 'nimble', 'noble', 'patient', 'quick', 'quiet', 'relaxed', 'serene', 'sharp', 'steady',
  'stoic', 'sunny', 'swift', 'tender', 'tidy', 'upbeat', 'vibrant', 'vigilant', 'wizardly', 'zealous',
];
const NAMES = [
  'agnesi', 'babbage', 'bartik', 'borg', 'cerf', 'curie', 'darwin', 'dijkstra', 'einstein', 'euler', 'faraday',
  'fermi', 'gauss', 'goldberg', 'hamilton', 'hopper', 'hypatia', 'johnson', 'kepler', 'knuth', 'lamarr', 'lovelace',
  'maxwell', 'meitner', 'mirzakhani', 'newton', 'noether', 'pascal', 'payne', 'ritchie', 'shannon', 'sinoussi',
  'thompson', 'torvalds', 'turing', 'wilson', 'wozniak', 'yalow',
];

export function generateName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NAMES[randomInt(NAMES.length)]}`;
}
