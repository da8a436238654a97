import { expect } from 'chai';
import { addQuantities, compareQuantities, formatQuantity, isQuantity, parseQuantity } from './quantity.js';

describe('quantity', () => {
  const canonical: Array<[string, string]> = [
    ['100m', '100m'], ['0.1', '100m'], ['1', '1'], ['1000m', '1'], ['1.5', '1500m'], ['2000', '2k'], ['1Gi', '1Gi'], ['1024Mi', '1Gi'],
    ['1536Mi', '1536Mi'], ['1500Ki', '1500Ki'], ['128974848', '128974848'], ['129e6', '129M'], ['1e3', '1k'], ['0', '0'], ['5n', '5n'], ['-1', '-1'], ['.5', '500m'],
  ];
  for (const [text, want] of canonical) it(`formats ${text} as ${want}`, () => expect(formatQuantity(parseQuantity(text))).to.equal(want));

  it('compares across suffixes exactly', () => {
    expect(compareQuantities(parseQuantity('1Gi'), parseQuantity('1073741824'))).to.equal(0);
    expect(compareQuantities(parseQuantity('1G'), parseQuantity('1Gi'))).to.equal(-1);
    expect(compareQuantities(parseQuantity('250m'), parseQuantity('0.2'))).to.equal(1);
  });

  it('adds without losing precision', () => {
    expect(formatQuantity(addQuantities(parseQuantity('100m'), parseQuantity('250m'), parseQuantity('1')))).to.equal('1350m');
    expect(formatQuantity(addQuantities(parseQuantity('1Ei'), parseQuantity('1Ei')))).to.equal('2Ei');
  });

  it('rounds sub-nano fractions up', () => expect(parseQuantity('0.0000000001').nanos).to.equal(1n));

  it('refuses what is not a quantity', () => {
    for (const bad of ['', 'abc', '1.2.3', '1Kb', '--1', '1 Gi', 'Infinity', 'x'.repeat(200)]) expect(isQuantity(bad), bad).to.equal(false);
    expect(isQuantity(3)).to.equal(true);
  });
});
